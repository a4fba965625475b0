"""The OpenAI-compatible wire format: request bodies checked field by field, errors as OpenAI writes them,
and the thinking a request asks for, from whichever field its client knows.

Every bad request becomes an `ApiError` with the status and body OpenAI's API would give (a 4xx with
`{"error": {"message", "type", "param", "code"}}`), so clients show the message instead of a dropped connection.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from engine.budget.driver import ThinkingRequest
from engine.runtime.loop import SamplingSettings

# reasoning_effort, as clients send it, onto Ponder's budgets (the app's slider stops): "minimal" is OpenAI's
# name for almost none; high stops below Auto's ceiling times two, where the 2-core machines take minutes.
EFFORT_BUDGETS = {"none": 0, "minimal": 0, "low": 256, "medium": 1024, "high": 4096}
MAX_STOPS = 4  # as OpenAI
MAX_INPUTS = 2048  # texts in one embeddings request, as OpenAI
# Every message costs a few tokens of its template, so no context holds this many; a body of millions of tiny
# messages would otherwise become millions of objects waiting for their turn at the model.
MAX_MESSAGES = 10_000


class ApiError(Exception):
    """A request the server refuses, with its HTTP status and OpenAI error fields."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def bad(param: str, message: str, code: str | None = None) -> ApiError:
    return ApiError(400, message, param, code)


@dataclass(frozen=True, slots=True)
class Turn:
    role: str  # system, user, assistant
    content: str


@dataclass(frozen=True, slots=True)
class ThinkingAsk:
    """What the request said about thinking: `request` None when it said nothing (the model's own default)."""

    request: ThinkingRequest | None = None
    collection: str | None = None


@dataclass(frozen=True, slots=True)
class GenerationAsk:
    """A checked /v1/chat/completions or /v1/completions body."""

    model: str | None
    stream: bool
    max_tokens: int | None
    sampling: SamplingSettings
    stop: tuple[str, ...] = ()
    include_usage: bool = False
    messages: tuple[Turn, ...] = ()  # chat
    prompt: str = ""  # completions
    thinking: ThinkingAsk = ThinkingAsk()
    template_kwargs: tuple[tuple[str, object], ...] = field(default_factory=tuple)


def _type_name(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def _get(body: dict, name: str, kinds: tuple, what: str, default=None):
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise bad(name, f"'{name}' must be {what}, not {_type_name(value)}.", "invalid_type")
    return value


def _number(body: dict, name: str, low: float, high: float, default: float) -> float:
    value = _get(body, name, (int, float), "a number", default)
    if not math.isfinite(value) or not low <= value <= high:
        raise bad(name, f"'{name}' must be between {low:g} and {high:g}, not {value!r}.", "invalid_value")
    return float(value)


def _count(body: dict, name: str, low: int = 1, default: int | None = None) -> int | None:
    value = _get(body, name, (int,), "an integer", default)
    if value is not None and value < low:
        raise bad(name, f"'{name}' must be at least {low}, not {value}.", "invalid_value")
    return value


def _text(content, where: str) -> str:
    """A message's content: a string, or an array of text parts (images and audio are not supported)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise bad(f"{where}[{i}]", "Only text content parts are supported: {\"type\": \"text\", "
                          "\"text\": \"...\"}.", "unsupported_content")
            parts.append(part["text"])
        return "\n".join(parts)
    raise bad(where, f"'{where}' must be a string or an array of text parts, not {_type_name(content)}.",
              "invalid_type")


def _messages(body: dict) -> tuple[Turn, ...]:
    messages = body.get("messages")
    if messages is None:
        raise bad("messages", "'messages' is required.", "missing_required_parameter")
    if not isinstance(messages, list) or not messages:
        raise bad("messages", "'messages' must be a non-empty array of {\"role\", \"content\"} objects.",
                  "invalid_type")
    if len(messages) > MAX_MESSAGES:
        raise bad("messages", f"'messages' has {len(messages):,} messages; at most {MAX_MESSAGES:,} are taken (no "
                  "context holds more).", "context_length_exceeded")
    turns = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise bad(f"messages[{i}]", f"messages[{i}] must be an object, not {_type_name(m)}.", "invalid_type")
        role = m.get("role")
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant"):
            raise bad(f"messages[{i}].role", f"messages[{i}].role must be system, developer, user or assistant, "
                      f"not {role!r} (tools are not supported).", "invalid_value")
        turns.append(Turn(role, _text(m.get("content") or "", f"messages[{i}].content")))
    if turns[-1].role != "user":
        raise bad("messages", "The last message must be the user's (continuing an assistant message is not "
                  "supported).", "invalid_value")
    return tuple(turns)


def _stops(body: dict) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops) or len(stops) > MAX_STOPS:
        raise bad("stop", f"'stop' must be a string or an array of at most {MAX_STOPS} strings.", "invalid_type")
    return tuple(s for s in stops if s)


def thinking_of(body: dict) -> ThinkingAsk:
    """The thinking a request asks for; the most specific field wins: ponder.budget, thinking_budget_tokens,
    reasoning_effort, chat_template_kwargs.enable_thinking. None of them: the model's own default."""
    ponder = _get(body, "ponder", (dict,), "an object", {})
    kwargs = _get(body, "chat_template_kwargs", (dict,), "an object", {})
    min_think = _count(ponder, "min_think", 0, 0)
    collection = _get(ponder, "collection", (str,), "a string")
    budget: int | None
    if "budget" in ponder and ponder["budget"] is not None:
        raw = ponder["budget"]
        if raw == "auto":
            budget = None
        elif isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
            budget = raw
        else:
            raise bad("ponder.budget", f"'ponder.budget' must be a number of tokens (0 or more) or \"auto\", not "
                      f"{raw!r}.", "invalid_value")
    elif body.get("thinking_budget_tokens") is not None:
        budget = _count(body, "thinking_budget_tokens", 0)
    elif body.get("reasoning_effort") is not None:
        effort = _get(body, "reasoning_effort", (str,), "a string")
        if effort not in EFFORT_BUDGETS:
            raise bad("reasoning_effort", f"'reasoning_effort' must be one of {', '.join(EFFORT_BUDGETS)}, not "
                      f"{effort!r}.", "invalid_value")
        budget = EFFORT_BUDGETS[effort]
    elif kwargs.get("enable_thinking") is not None:
        on = _get(kwargs, "enable_thinking", (bool,), "a boolean")
        budget = None if on else 0
    else:
        return ThinkingAsk(None, collection)
    return ThinkingAsk(ThinkingRequest(budget, min_think), collection)


def _sampling(body: dict) -> SamplingSettings:
    base = SamplingSettings()
    seed = _get(body, "seed", (int,), "an integer")
    penalty = _number(body, "repeat_penalty", 0.0, 10.0, base.repeat_penalty)
    if "frequency_penalty" in body or "presence_penalty" in body:  # OpenAI's; llama.cpp's repeat penalty stays
        _number(body, "frequency_penalty", -2.0, 2.0, 0.0)
        _number(body, "presence_penalty", -2.0, 2.0, 0.0)
    return SamplingSettings(temperature=_number(body, "temperature", 0.0, 2.0, base.temperature),
                            top_p=_number(body, "top_p", 0.0, 1.0, base.top_p),
                            top_k=_count(body, "top_k", 0, base.top_k), min_p=_number(body, "min_p", 0.0, 1.0,
                                                                                      base.min_p),
                            repeat_penalty=penalty, seed=seed)


def _common(body: dict) -> dict:
    if not isinstance(body, dict):
        raise bad(None, f"The request body must be a JSON object, not {_type_name(body)}.", "invalid_type")
    n = _count(body, "n", 1, 1)
    if n != 1:
        raise bad("n", "Only n=1 is supported: send the request again for another answer.", "unsupported_value")
    if body.get("logprobs") not in (None, False) or body.get("tools"):
        field_ = "logprobs" if body.get("logprobs") not in (None, False) else "tools"
        raise bad(field_, f"'{field_}' is not supported by this server.", "unsupported_parameter")
    options = _get(body, "stream_options", (dict,), "an object", {})
    max_tokens = _count(body, "max_completion_tokens") or _count(body, "max_tokens")
    return {"model": _get(body, "model", (str,), "a string"), "stream": _get(body, "stream", (bool,), "a boolean",
                                                                              False),
            "max_tokens": max_tokens, "sampling": _sampling(body), "stop": _stops(body),
            "include_usage": bool(_get(options, "include_usage", (bool,), "a boolean", False))}


def chat_request(body) -> GenerationAsk:
    """A /v1/chat/completions body, checked; ApiError (400) names the first bad field."""
    common = _common(body)
    kwargs = _get(body, "chat_template_kwargs", (dict,), "an object", {})
    passed = tuple((k, v) for k, v in kwargs.items() if k != "enable_thinking")
    return GenerationAsk(messages=_messages(body), thinking=thinking_of(body), template_kwargs=passed, **common)


def completion_request(body) -> GenerationAsk:
    """A /v1/completions body: the prompt is continued as it is (no template, no thinking)."""
    common = _common(body)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if prompt is None:
        raise bad("prompt", "'prompt' is required.", "missing_required_parameter")
    if not isinstance(prompt, str):
        raise bad("prompt", "'prompt' must be a string (one prompt per request).", "invalid_type")
    if body.get("echo") or body.get("suffix"):
        raise bad("echo" if body.get("echo") else "suffix", "'echo' and 'suffix' are not supported.",
                  "unsupported_parameter")
    return GenerationAsk(prompt=prompt, **{**common, "max_tokens": common["max_tokens"] or 16})


def embedding_inputs(body) -> tuple[str | None, list[str], str]:
    """The model, texts and encoding ("float" or "base64", which the openai package asks for) of a
    /v1/embeddings body."""
    if not isinstance(body, dict):
        raise bad(None, f"The request body must be a JSON object, not {_type_name(body)}.", "invalid_type")
    model = _get(body, "model", (str,), "a string")
    texts = body.get("input")
    if texts is None:
        raise bad("input", "'input' is required.", "missing_required_parameter")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise bad("input", "'input' must be a string or a non-empty array of strings (token arrays are not "
                  "supported).", "invalid_type")
    if len(texts) > MAX_INPUTS:
        raise bad("input", f"'input' has {len(texts):,} texts; send at most {MAX_INPUTS:,} per request.",
                  "invalid_value")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise bad("encoding_format", "'encoding_format' must be \"float\" or \"base64\".", "invalid_value")
    return model, texts, encoding
