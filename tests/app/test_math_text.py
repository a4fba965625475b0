"""Chat models' LaTeX as text (app/math_text.py): whole answers, and answers streamed token by token."""
from app.math_text import MathStream, plain_math


def test_latex_from_a_chat_model_reads_as_text():
    assert plain_math(r"Thus there are \(\boxed{31}\) apples.") == "Thus there are **31** apples."
    assert plain_math(r"\[ 12 \times 3 = 36 \text{ apples} \]").split() == ["12", "×", "3", "=", "36", "apples"]
    assert plain_math(r"\frac{3}{4} of 25\% is \$5") == "3/4 of 25% is $5"
    assert plain_math("no math here [1]") == "no math here [1]"
    # Nested commands and spacing (the 1.5B's train answer once showed as "\\boxed{5 , pm}"):
    assert plain_math(r"\(\boxed{5 \, \text{pm}}\)") == "**5 pm**"
    assert plain_math(r"Time = \frac{120 \, \text{km}}{60 \, \text{km/h}}") == "Time = 120 km/60 km/h"
    assert plain_math(r"\boxed{\dfrac{1}{2}}") == "**1/2**"
    assert plain_math(r"x \leq 3, y \neq 4, 90^\circ, \sqrt{16} = 4 \pm 0") == "x ≤ 3, y ≠ 4, 90°, √(16) = 4 ± 0"
    assert plain_math(r"\left( 2 \cdot 3 \right)") == "( 2 · 3 )"
    assert plain_math(r"$\boxed{40}$ and $$x \leq 2$$") == "**40** and x ≤ 2"
    assert plain_math(r"costs $5 and $10, or \$15") == "costs $5 and $10, or $15"  # prices stay


ANSWER = ("Each row has \\(12\\) plants, so:\n\\[ 18 \\times 12 = 216 \\]\n"
          "That is \\(\\boxed{216 \\, \\text{plants}}\\) in all, about 25\\% more.\n"
          "At $2 a plant: $$216 \\times 2 = \\boxed{432}$$ dollars, or $432.")


def _streamed(text: str, size: int) -> tuple[str, list[str]]:
    stream = MathStream()
    shown = [stream.feed(text[i:i + size]) for i in range(0, len(text), size)]
    return "".join(shown) + stream.flush(), shown


def test_a_streamed_answer_reads_as_the_whole_one_converted_however_the_tokens_fall():
    for size in (1, 2, 3, 5, 8, 13, len(ANSWER)):
        assert _streamed(ANSWER, size)[0] == plain_math(ANSWER), size
    assert plain_math(ANSWER) == ("Each row has 12 plants, so:\n 18 × 12 = 216 \nThat is **216 plants** in all, "
                                  "about 25% more.\nAt $2 a plant: 216 × 2 = **432** dollars, or $432.")


def test_text_without_math_is_shown_as_it_comes_and_math_waits_only_for_its_line():
    text, shown = _streamed("Paris is the capital.\nIt has 2 million people.", 4)
    assert text == "Paris is the capital.\nIt has 2 million people." and "".join(shown[:2]) == "Paris is"
    stream = MathStream()
    assert stream.feed("So \\boxed{4") == "So"  # held from the command (with the space before it) on
    assert stream.feed("2} here") == ""
    assert stream.feed(".\nNext") == " **42** here.\nNext"  # the line is complete
    assert stream.flush() == ""


def test_a_line_of_math_that_never_ends_is_not_held_forever():
    stream = MathStream()
    assert stream.feed("\\times " * 100) != ""  # past HOLD characters it is shown, converted
