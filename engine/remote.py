"""A remote engine: any OpenAI-compatible server (llama.cpp's llama-server, vLLM, Ollama, LM Studio,
llama-cpp-python's server) behind the same `ask` as the local Engine — streaming, cancel, history, documents,
and the thinking budget enforced on what the server streams.

Documents: retrieval stays on this machine; the numbered passages go to the server in the system message,
sized to the endpoint's context window (`n_ctx`) with tokens estimated from characters.

The budget: reasoning arrives either as `reasoning_content` deltas or inside `<think>` tags in the content
(servers stream about one token per delta). The server is asked for the budget itself
(`thinking_budget_tokens`, which llama-server honours); whatever it does, Ponder stops reading at the budget,
closes the stream and continues with the thinking closed: the conversation plus an assistant message
`<think>…</think>` sent with `continue_final_message` (vLLM) — llama-server treats a final assistant message
as a prefill. Any thinking the continuation still produces is dropped, so what is shown never passes the budget.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from engine.answering import Answerer, with_passages
from engine.budget.auto import AUTO_CEILING
from engine.chat.history import History, StoredMessage
from engine.chat.prompt import answer_reserve
from engine.chat.recorder import AnswerRecorder
from engine.errors import Cancelled, RemoteError
from engine.events import Answer, ThinkingReport, Timings, Usage
from engine.options import AskOptions
from engine.paths import config_dir
from engine.rag.library import INSTRUCTION, Library, estimated_tokens
from engine.settings import read_json, write_json_atomic

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
TIMEOUT_S = 120
MESSAGE_OVERHEAD = 8  # tokens a chat template adds around each message (role markers, separators)


@dataclass(frozen=True, slots=True)
class RemoteEndpoint:
    url: str  # the API base, e.g. http://127.0.0.1:8080/v1
    model: str = ""  # "" : the first model the server lists
    prefilled_think: bool = False  # the server's chat template opens the thinking span itself (Qwen3.5, QwQ…)
    n_ctx: int = 4096  # the server's context window in tokens: documents sent with a question are sized to it

    @property
    def secret_name(self) -> str:
        """The keychain entry holding this endpoint's API key."""
        return f"api-key:{self.url.rstrip('/')}"


def _endpoints_path() -> Path:
    return config_dir() / "remotes.json"


def load_endpoints() -> list[RemoteEndpoint]:
    """Saved servers (their API keys are in the keychain, not here)."""
    rows = read_json(_endpoints_path(), [])
    known = {"url", "model", "prefilled_think", "n_ctx"}
    return [RemoteEndpoint(**{k: v for k, v in r.items() if k in known}) for r in rows
            if isinstance(r, dict) and r.get("url")]


def save_endpoint(endpoint: RemoteEndpoint) -> None:
    rows = [e for e in load_endpoints() if e.url != endpoint.url] + [endpoint]
    write_json_atomic(_endpoints_path(), [asdict(e) for e in rows])


def remove_endpoint(url: str) -> None:
    write_json_atomic(_endpoints_path(), [asdict(e) for e in load_endpoints() if e.url != url])


class TagSplitter:
    """Splits streamed content into thinking and answer at <think> / </think>, tags split across pieces too."""

    def __init__(self, inside: bool = False) -> None:
        self.inside, self.pending = inside, ""

    def feed(self, text: str) -> Iterator[tuple[str, str]]:
        self.pending += text
        while self.pending:
            tag = THINK_CLOSE if self.inside else THINK_OPEN
            at = self.pending.find(tag)
            if at >= 0:
                if at:
                    yield ("thinking" if self.inside else "answer"), self.pending[:at]
                self.pending, self.inside = self.pending[at + len(tag):], not self.inside
                continue
            keep = next((n for n in range(len(tag) - 1, 0, -1) if self.pending.endswith(tag[:n])), 0)
            if len(self.pending) > keep:
                yield ("thinking" if self.inside else "answer"), self.pending[:len(self.pending) - keep]
                self.pending = self.pending[len(self.pending) - keep:]
            return

    def flush(self) -> Iterator[tuple[str, str]]:
        if self.pending:
            yield ("thinking" if self.inside else "answer"), self.pending
            self.pending = ""


@dataclass
class _Stream:
    thinking: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)
    finish: str = ""
    first: float = 0.0
    answer_started: float = 0.0
    prompt_tokens: int = 0


@dataclass(frozen=True, slots=True)
class _RemoteRequest:
    """A question's request body, and the limits Ponder enforces on what streams back."""

    body: dict
    budget: int | None  # thinking tokens; None: Auto (the server's model decides)
    max_tokens: int  # answer tokens

    @property
    def prompt(self) -> str:
        """The messages sent, as a person reads them ("What the model saw")."""
        return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in self.body["messages"])


class RemoteEngine(Answerer):
    """Answers through a server; documents are searched here and sent with the question. Not thread-safe (one
    ask at a time), like Engine."""

    def __init__(self, endpoint: RemoteEndpoint, api_key: str | None = None, history: History | None = None,
                 library: Library | None = None) -> None:
        super().__init__(history, library)
        self.endpoint, self.api_key = endpoint, api_key
        self._model = endpoint.model

    # -- HTTP -----------------------------------------------------------------------------------
    def _request(self, path: str, body: dict | None = None):
        url = self.endpoint.url.rstrip("/") + path
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream, application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode() if body is not None else None
        try:
            return urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=TIMEOUT_S)
        except urllib.error.HTTPError as e:
            detail = e.read()[:500].decode("utf-8", "replace")
            if e.code in (401, 403):
                raise RemoteError(f"{self.endpoint.url} refused the request ({e.code}): check its API key.",
                                  detail) from None
            raise RemoteError(f"{self.endpoint.url} answered HTTP {e.code}: {detail[:200]}", detail) from None
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise RemoteError(f"Cannot reach {self.endpoint.url} ({getattr(e, 'reason', e)}); is the server "
                              "running?") from None

    def models(self) -> list[str]:
        with self._request("/models") as response:
            return [m["id"] for m in json.loads(response.read()).get("data", [])]

    @property
    def model(self) -> str:
        if not self._model:
            listed = self.models()
            if not listed:
                raise RemoteError(f"{self.endpoint.url} lists no models.")
            self._model = listed[0]
        return self._model

    def _events(self, body: dict, is_cancelled: Callable[[], bool]) -> Iterator[dict]:
        """Server-sent chunks; closing the generator closes the connection (the server stops generating)."""
        with self._request("/chat/completions", body) as response:
            for raw in response:
                if is_cancelled():
                    raise Cancelled()
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise RemoteError(f"{self.endpoint.url} sent something that is not JSON: {data[:120]}") from None
                if "error" in chunk:
                    raise RemoteError(f"{self.endpoint.url} failed: {chunk['error']}")
                yield chunk

    # -- answering ------------------------------------------------------------------------------
    def _run(self, body: dict, inside: bool, s: _Stream, on_piece, is_cancelled) -> str | None:
        """Stream one request into `s`; "budget" or "length" when Ponder cut it there, else None."""
        splitter = TagSplitter(inside)
        stream = self._events(body, is_cancelled)
        try:
            for chunk in stream:
                if chunk.get("usage"):
                    s.prompt_tokens = chunk["usage"].get("prompt_tokens", 0) or s.prompt_tokens
                for choice in chunk.get("choices", [])[:1]:
                    delta = choice.get("delta") or {}
                    pieces = [("thinking", delta.get("reasoning_content") or delta.get("reasoning") or "")]
                    pieces += list(splitter.feed(delta.get("content") or ""))
                    for kind, text in pieces:
                        cut = on_piece(kind, text) if text else None
                        if cut:
                            return cut
                    s.finish = choice.get("finish_reason") or s.finish
            for kind, text in splitter.flush():
                on_piece(kind, text)
            return None
        finally:
            stream.close()

    # -- answering: the turn's lifecycle is Answerer.ask; these are the server's own steps -------------
    def _get_ready(self) -> None:
        self.model  # the server is reached (and its model named) before anything is written

    def _document_room(self, question: str, earlier: list[StoredMessage],
                       options: AskOptions) -> tuple[Callable[[str], int], int]:
        """The server's tokenizer is out of reach: tokens are estimated generously from characters, and the
        whole conversation counts (a server is sent every turn)."""
        n_ctx = self.endpoint.n_ctx
        sent = [INSTRUCTION, question, *(m.content for m in earlier)]
        overhead = sum(estimated_tokens(text) + MESSAGE_OVERHEAD for text in sent)
        return estimated_tokens, n_ctx - answer_reserve(options.max_tokens, n_ctx) - overhead

    def _prepare(self, question: str, earlier: list[StoredMessage], options: AskOptions,
                 cites: bool, added: str = "") -> _RemoteRequest:
        messages = [{"role": "system", "content": options.system_prompt}] if options.system_prompt else []
        messages += [{"role": m.role, "content": m.content} for m in earlier
                     if m.role in ("user", "assistant") and m.content]
        messages.append({"role": "user", "content": with_passages(added, question)})
        budget = options.thinking.budget if options.thinking is not None else None
        sampling = options.sampling
        body = {"model": self.model, "messages": messages, "stream": True, "max_tokens": options.max_tokens,
                "temperature": sampling.temperature, "stream_options": {"include_usage": True}}
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if budget is not None:
            body["thinking_budget_tokens"] = budget
            body["max_tokens"] += budget
        else:
            body["max_tokens"] += AUTO_CEILING  # Auto: the server's model decides; room for as much as Auto buys
        return _RemoteRequest(body, budget, options.max_tokens)

    def _generate(self, request: _RemoteRequest, recorder: AnswerRecorder, is_cancelled: Callable[[], bool],
                  started: float) -> Answer:
        budget, body = request.budget, request.body
        s = _Stream()
        closed_by = "model"

        def on_piece(kind: str, text: str, continuing: bool = False):
            now = time.perf_counter()
            s.first = s.first or now
            if kind == "thinking":
                if continuing or budget == 0:
                    return None  # the span is closed: late thinking is not shown or counted
                if budget is not None and len(s.thinking) >= budget:
                    return "budget"
                s.thinking.append(text)
                recorder.on_thinking(text)
                return None
            if len(s.answer) >= request.max_tokens:  # the server's max_tokens also covers thinking
                s.finish = "length"
                return "length"
            s.answer_started = s.answer_started or now
            s.answer.append(text)
            recorder.on_text(text)
            return None

        try:
            cut = self._run(body, self.endpoint.prefilled_think, s, on_piece, is_cancelled)
            if cut == "budget":
                closed_by = "budget"
                reasoning = "".join(s.thinking)
                prefill = {"role": "assistant", "content": f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n\n"}
                body = {**body, "messages": body["messages"] + [prefill], "max_tokens": request.max_tokens,
                        "continue_final_message": True, "add_generation_prompt": False, "thinking_budget_tokens": 0}
                self._run(body, False, s, lambda k, t: on_piece(k, t, continuing=True), is_cancelled)
        except Cancelled:
            s.finish = "cancelled"
        return self._answer(s, started, budget, closed_by, request.prompt)

    def _answer(self, s: _Stream, started: float, budget: int | None, closed_by: str, prompt: str) -> Answer:
        end = time.perf_counter()
        if budget == 0 or not s.thinking:
            closed_by = "off"
        report = ThinkingReport("remote", budget or 0, len(s.thinking), closed_by, auto=budget is None,
                                thinking_s=round((s.answer_started or end) - (s.first or end), 3),
                                answer_s=round(end - (s.answer_started or end), 3))
        answer_s = end - s.answer_started if s.answer_started else 0.0
        stop = {"stop": "eos", "length": "length", "cancelled": "cancelled"}.get(s.finish, s.finish or "eos")
        return Answer(
            text="".join(s.answer).strip(), stop_reason=stop,
            usage=Usage(prompt_tokens=s.prompt_tokens, thinking_tokens=len(s.thinking), answer_tokens=len(s.answer)),
            timings=Timings(ttft_s=round((s.first or end) - started, 4),
                            decode_tok_s=round(len(s.answer) / answer_s, 1) if answer_s > 0 else 0.0),
            reasoning="".join(s.thinking).strip(), model=self.model, backend=f"remote {self.endpoint.url}",
            budget=budget, thinking=report, prompt=prompt)
