"""Turning messages into a prompt: the model's own Jinja template, a named format, or few-shot completion.

A GGUF without a chat template is a base model. Measured: the built-in Gemma 3
270M base answered nothing with llama-cpp-python's default chat format, only
echoed the question with Gemma's turn markers, and said "Paris." to a few-shot
"Question:/Answer:" completion prompt; so base models get that prompt.
"""
from __future__ import annotations

import datetime
import re
import threading
import time
from dataclasses import dataclass

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError, safe_range
from jinja2.utils import Namespace

from engine.errors import ModelError


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # system, user, assistant
    content: str


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    stop: tuple[str, ...]
    add_bos: bool  # whether the tokenizer should add BOS (False when the text already starts with it)


FEW_SHOT = (  # (question, reasoning, answer): the reasoning is shown only when the span is on
    ("What is the capital of Italy?", "Italy is a country in southern Europe, and its capital city is Rome.",
     "Rome."),
    ("How many legs does a spider have?",
     "Spiders are arachnids, and arachnids have four pairs of legs, so 4 x 2 = 8.", "Eight."),
)

# Formats a user can pick per model when a template is missing or wrong.
NAMED_TEMPLATES = {
    "chatml": (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"),
    "gemma": (
        "{{ bos_token }}{% for m in messages %}{% set role = 'model' if m.role == 'assistant' else 'user' %}"
        "<start_of_turn>{{ role }}\n{{ m.content }}<end_of_turn>\n{% endfor %}"
        "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"),
    "llama3": (
        "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n"
        "{{ m.content }}<|eot_id|>{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"),
}
FORMATS = ("auto", "template", "completion", *NAMED_TEMPLATES)


# A chat template comes from the model file, so from anyone: the sandbox stops it reaching Python, and these bound
# what it may cost. Real templates are a few kB and render a prompt in milliseconds.
MAX_TEMPLATE_CHARS = 256 * 1024
MAX_OUTPUT_CHARS = 8 * 1024 * 1024  # far above any context window's worth of text
MAX_RENDER_S = 5.0
MAX_INT_ARG = 100_000  # widths, counts and repeats a template may ask a filter or method for
_BIG_WIDTH = re.compile(r"\d{6,}")  # a format spec such as {:>1000000}


def _raise(message: str):
    raise jinja2.TemplateError(message)


class _Budget(threading.local):
    """This thread's running render's deadline, checked wherever a template can loop or grow a value."""

    deadline = float("inf")

    def check(self, size: int = 0) -> None:
        if size > MAX_OUTPUT_CHARS:
            raise SecurityError(f"the template builds a value over {MAX_OUTPUT_CHARS:,} characters")
        if time.monotonic() > self.deadline:
            raise SecurityError(f"the template ran for more than {MAX_RENDER_S:g} s")


_budget = _Budget()


def _size(value) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple, dict)) else 0


def _timed_range(*args: int):
    for i, item in enumerate(safe_range(*args)):
        if i % 1024 == 0:
            _budget.check()
        yield item


class _BoundedNamespace(Namespace):
    """namespace() is the one place a template can carry a value from one loop pass to the next."""

    def __setitem__(self, name, value) -> None:
        _budget.check(_size(value))
        super().__setitem__(name, value)


def _check_args(args, kwargs) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT_ARG:
            raise SecurityError(f"the template asks for {value:,} (more than {MAX_INT_ARG:,})")


def _bounded_filter(function):
    first = 2 if hasattr(function, "jinja_pass_arg") else 1  # (the context,) the value, then its parameters

    def bounded(*args, **kwargs):
        _check_args(args[first:], kwargs)
        if function is _FILTER_REPLACE and len(args) > 3:
            _check_replace(args[1], args[3])
        result = function(*args, **kwargs)
        _budget.check(_size(result))
        return result

    for marker in ("jinja_pass_arg",):
        if hasattr(function, marker):
            setattr(bounded, marker, getattr(function, marker))
    return bounded


def _check_replace(subject, new) -> None:
    if isinstance(subject, str) and isinstance(new, str) and (len(subject) + 1) * max(1, len(new)) > MAX_OUTPUT_CHARS:
        raise SecurityError("the template's replace would build a value too large")


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every operator, call and filter that can grow a value or spin bounded."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, (int, float)) and abs(right) * max(1, abs(_bits(left))) > 4096:
            raise SecurityError("the template raises a number to too large a power")
        if operator == "*":
            n = max(_size(left) * _int(right), _size(right) * _int(left))
            _budget.check(n)
        if operator == "%" and isinstance(left, str) and _BIG_WIDTH.search(left):
            raise SecurityError("the template formats with too large a width")
        if operator == "+":
            _budget.check(_size(left) + _size(right))
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj, attribute):
        if isinstance(obj, str) and attribute in ("format", "format_map") and _BIG_WIDTH.search(obj):
            raise SecurityError("the template formats with too large a width")
        return super().getattr(obj, attribute)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - jinja2's own signature
        _check_args(args, kwargs)
        if getattr(__obj, "__name__", "") == "replace" and isinstance(getattr(__obj, "__self__", None), str) and \
                len(args) > 1:
            _check_replace(__obj.__self__, args[1])
        result = super().call(__context, __obj, *args, **kwargs)
        _budget.check(_size(result))
        return result


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _bits(value) -> int:
    return value.bit_length() if isinstance(value, int) and not isinstance(value, bool) else 64


_FILTER_REPLACE = jinja2.filters.FILTERS["replace"]


def _environment() -> ImmutableSandboxedEnvironment:
    env = _Sandbox(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.ChainableUndefined)
    env.filters = {name: _bounded_filter(f) for name, f in env.filters.items()}
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    env.globals["range"] = _timed_range
    env.globals["namespace"] = _BoundedNamespace
    return env


_ENV = _environment()


def render_template(template: str, messages: list[Message], *, bos_token: str = "", eos_token: str = "",
                    add_generation_prompt: bool = True, **kwargs) -> str:
    """Render a Hugging Face-style chat template in a sandbox, bounded in time and size; ModelError when the
    template breaks or goes past a bound."""
    if len(template) > MAX_TEMPLATE_CHARS:
        raise ModelError(f"The model's chat template is {len(template):,} characters, more than any real one; "
                         "choose another prompt format for this model.")
    _budget.deadline = time.monotonic() + MAX_RENDER_S
    try:
        compiled = _ENV.from_string(template)
        out, size = [], 0
        for piece in compiled.generate(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                bos_token=bos_token, eos_token=eos_token, add_generation_prompt=add_generation_prompt, **kwargs):
            size += len(piece)
            _budget.check(size)
            out.append(piece)
        return "".join(out)
    except (jinja2.TemplateError, RecursionError, MemoryError, OverflowError, ArithmeticError, TypeError,
            ValueError, LookupError, AttributeError) as e:
        reason = "it recurses without end" if isinstance(e, RecursionError) else f"{type(e).__name__}: {e}"
        raise ModelError(f"The model's chat template failed ({reason}); choose another prompt format for this "
                         "model.", detail=str(e)[:2000]) from None
    finally:
        _budget.deadline = float("inf")


def render_completion(messages: list[Message], thinking: bool = False) -> str:
    """A few-shot Question/Answer prompt for base models; with `thinking`, the examples reason on a
    "Reasoning:" line first and the prompt ends opening one (the scaffold's thinking span)."""
    parts = [m.content.strip() + "\n\n" for m in messages if m.role == "system" and m.content.strip()]
    for q, r, a in FEW_SHOT:
        parts.append(f"Question: {q}\nReasoning: {r}\nAnswer: {a}\n\n" if thinking else f"Question: {q}\nAnswer: {a}\n\n")
    pending = None
    for m in messages:
        if m.role == "user":
            pending = m.content.strip()
        elif m.role == "assistant" and pending is not None:
            parts.append(f"Question: {pending}\nAnswer: {m.content.strip()}\n\n")
            pending = None
    if pending is not None:
        parts.append(f"Question: {pending}\nReasoning:" if thinking else f"Question: {pending}\nAnswer:")
    return "".join(parts)


def resolve_format(requested: str, has_template: bool) -> str:
    if requested not in FORMATS:
        raise ModelError(f"Unknown prompt format '{requested}'; choose one of: {', '.join(FORMATS)}.")
    if requested == "auto":
        return "template" if has_template else "completion"
    if requested == "template" and not has_template:
        raise ModelError("This model has no chat template; choose the completion format or a named one.")
    return requested


def render(fmt: str, messages: list[Message], *, template: str, bos_token: str, eos_token: str,
           thinking: bool = False, suffix: str = "", **kwargs) -> Rendered:
    """Render `messages` in format `fmt` (already resolved) for generation; `suffix` ends the prompt."""
    if fmt == "completion":
        return Rendered(render_completion(messages, thinking) + suffix, ("\nQuestion:",), add_bos=True)
    source = template if fmt == "template" else NAMED_TEMPLATES[fmt]
    text = render_template(source, messages, bos_token=bos_token, eos_token=eos_token, **kwargs) + suffix
    starts_with_bos = bool(bos_token) and text.startswith(bos_token)
    return Rendered(text, (), add_bos=not starts_with_bos)
