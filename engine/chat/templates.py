"""Turning messages into a prompt: the model's own Jinja template, a named format, or few-shot completion.

A GGUF without a chat template is a base model. Measured: the built-in Gemma 3
270M base answered nothing with llama-cpp-python's default chat format, only
echoed the question with Gemma's turn markers, and said "Paris." to a few-shot
"Question:/Answer:" completion prompt; so base models get that prompt.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

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


def _raise(message: str):
    raise jinja2.TemplateError(message)


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.ChainableUndefined)
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    return env


_ENV = _environment()


def render_template(template: str, messages: list[Message], *, bos_token: str = "", eos_token: str = "",
                    add_generation_prompt: bool = True, **kwargs) -> str:
    """Render a Hugging Face-style chat template in a sandbox; ModelError when the template breaks."""
    try:
        compiled = _ENV.from_string(template)
        return compiled.render(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            bos_token=bos_token, eos_token=eos_token, add_generation_prompt=add_generation_prompt, **kwargs)
    except jinja2.TemplateError as e:
        raise ModelError(f"The model's chat template failed ({e}); choose another prompt format for this model.",
                         detail=str(e)) from None


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
