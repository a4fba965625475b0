"""TextStream: UTF-8 split across tokens, stop strings split across tokens, held-back text released at the end."""
from engine.runtime.loop import TextStream


def feed(stream: TextStream, pieces: list[bytes]) -> list[str]:
    return [stream.push(p) for p in pieces]


def test_utf8_character_split_across_tokens():
    s = TextStream(())
    euro = "€".encode()
    out = feed(s, [b"cost ", euro[:1], euro[1:2], euro[2:], b"5"])
    assert "".join(out) == "cost €5" and out[1] == "" and out[2] == ""


def test_stop_string_split_across_tokens_is_cut():
    s = TextStream(("\nQuestion:",))
    out = feed(s, [b" Paris", b".", b"\n", b"Quest", b"ion", b":", b" more"])
    assert "".join(out) == " Paris." and s.stopped
    assert out[2] == "" and out[3] == ""  # held back while it could still be the stop string


def test_partial_stop_released_when_it_diverges():
    s = TextStream(("\nQuestion:",))
    out = feed(s, [b"a", b"\n", b"Ques", b"t"])
    assert "".join(out) == "a" and not s.stopped
    out2 = s.push(b"s")  # "\nQuests" is not the stop
    assert out2 == "\nQuests"


def test_flush_releases_held_text():
    s = TextStream(("STOP",))
    assert s.push(b"go ST") == "go "
    assert s.flush() == "ST"
    assert s.text == "go ST"
