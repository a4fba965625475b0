"""The HTTP side of `ponder serve`: the standard library's threading server, one thread per connection, JSON
and server-sent events in OpenAI's shapes.

The standard library rather than an ASGI stack: the work is one model's batch loop, which has its own thread;
an HTTP thread only waits for pieces and writes them, so there is nothing for an event loop to win, and the
frozen app ships no web framework. A thread waiting for pieces also watches its socket: a client that hangs up
cancels its request before the next decode (runtime/batch.py frees the slot), streaming or not. What a client may
take (connections, time to send a request, sizes) is bounded by guard.py; every request the server refuses, down
to a request line that does not parse, is answered with OpenAI's error body.
"""
from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import logging
import queue
import select
import socket
import struct
import threading
import time
import uuid

from engine.errors import GenerationError, PonderError
from engine.server.guard import GuardedHandler, GuardedServer, Limits
from engine.server.protocol import ApiError, GenerationAsk, chat_request, completion_request, embedding_inputs
from engine.server.service import ModelService, Ticket

log = logging.getLogger(__name__)
WAIT_S = 0.1  # how often a waiting request looks at its client's socket
POST_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
FINISH = {"eos": "stop", "stop": "stop", "length": "length", "context": "length", "cancelled": "stop"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _usage(ticket: Ticket, r) -> dict:
    completion = r.answer_tokens + r.thinking_tokens
    return {"prompt_tokens": ticket.prompt_tokens, "completion_tokens": completion,
            "total_tokens": ticket.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": r.reused_tokens},
            "completion_tokens_details": {"reasoning_tokens": r.thinking_tokens}}


def _extension(ticket: Ticket, r) -> dict:
    """Ponder's own fields: what the thinking did, and the sources an answer from documents was given."""
    out = {"thinking": {"budget": r.budget, "used": r.thinking_tokens, "closed_by": r.closed_by,
                        "auto_reason": r.auto_reason},
           "stop_reason": r.stop_reason}
    if ticket.sources:
        out["sources"] = [{"n": s.n, "path": s.path, "page": s.page, "snippet": s.snippet} for s in ticket.sources]
    if ticket.notice:
        out["notice"] = ticket.notice
    return out


class Handler(GuardedHandler):
    server: "ApiServer"

    # -- plumbing -------------------------------------------------------------------------------
    def _authorized(self) -> bool:
        key = self.server.api_key
        if not key:
            return True
        given = self.headers.get("Authorization", "")
        return given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), key.encode())

    def _client_gone(self) -> bool:
        """The client closed its end (a readable socket with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _route(self, routes: dict) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        handler = routes.get(path)
        try:
            if self.command != "POST" or self.is_late():
                self.arrived()
            if handler is None:
                known = path in POST_PATHS or path in ("/health", "/v1/models")
                raise ApiError(405 if known else 404, f"{self.command} {self.path} is not an endpoint of this server"
                               "; it has GET /v1/models, GET /health, POST /v1/chat/completions, "
                               "/v1/completions and /v1/embeddings.", None,
                               "method_not_allowed" if known else "unknown_url")
            if not self._authorized():
                raise ApiError(401, "Invalid or missing API key: send it as 'Authorization: Bearer KEY'.", None,
                               "invalid_api_key", "authentication_error")
            handler()
        except ApiError as e:
            self.reply_error(e)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except PonderError as e:  # a sentence for the person (a document index that cannot be read…)
            self.reply_error(ApiError(500, str(e), None, "server_error", "server_error"))
        except Exception as e:  # noqa: BLE001 - a bug answers 500 with its name rather than dropping the client
            log.exception("%s %s failed", self.command, self.path)
            if not self._headers_sent:
                self.reply_error(ApiError(500, f"The server failed ({type(e).__name__}); its log has the details.",
                                          None, "server_error", "server_error"))

    def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's names
        self._route({"/health": self._health, "/v1/models": self._models,
                     **{f"/v1/models/{m['id']}": (lambda m=m: self.send_json(200, m))
                        for m in self.server.service.models()}})

    def do_POST(self) -> None:  # noqa: N802
        self._route({"/v1/chat/completions": lambda: self._generate(chat_request),
                     "/v1/completions": lambda: self._generate(completion_request),
                     "/v1/embeddings": self._embeddings})

    def _no_such_method(self) -> None:
        self._route({})  # its body is left unread: the connection closes after the 405

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _no_such_method

    # -- endpoints ------------------------------------------------------------------------------
    def _health(self) -> None:
        stats = self.server.service.stats()
        self.send_json(200, {"status": "ok", "model": self.server.service.model_id,
                             "slots": len(self.server.service.runtime.slots), "active": stats.active,
                             "queued": stats.queued, "requests": stats.requests})

    def _models(self) -> None:
        self.send_json(200, {"object": "list", "data": self.server.service.models()})

    def _embeddings(self) -> None:
        model, texts, encoding = self.read_json(embedding_inputs)
        start = time.perf_counter()
        vectors, used = self.server.service.embed(model, texts)
        data = [{"object": "embedding", "index": i, "embedding": v if encoding == "float" else
                 base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode()} for i, v in enumerate(vectors)]
        self.send_json(200, {"object": "list", "data": data, "model": model or "all-minilm-l6-v2",
                             "usage": {"prompt_tokens": used, "total_tokens": used}})
        self.server.service.log(f"POST /v1/embeddings 200 {len(texts)} inputs, {used} tokens, "
                                f"{time.perf_counter() - start:.2f} s")

    def _generate(self, parse) -> None:
        ask: GenerationAsk = self.read_json(parse)
        gone = threading.Event()
        try:
            ticket = self.server.service.start(ask, gone.is_set)
        except GenerationError as e:
            raise ApiError(400, str(e), None, "context_length_exceeded") from None
        chat = bool(ask.messages)
        ids = {"id": ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24], "created": int(time.time()),
               "model": ticket.model}
        start = time.perf_counter()
        if ask.stream:
            result = self._stream(ticket, ids, chat, ask.include_usage, gone)
        else:
            result = self._whole(ticket, ids, chat, gone)
        if result is None:
            self.server.service.log(f"POST {self.path} client went away; its slot was freed")
            return
        self.server.service.log(
            f"POST {self.path} {'stream ' if ask.stream else ''}{result.stop_reason}: {ticket.prompt_tokens} prompt "
            f"({result.reused_tokens} cached), {result.thinking_tokens} thinking, {result.answer_tokens} answer "
            f"tokens, {time.perf_counter() - start:.2f} s")

    def _pieces(self, ticket: Ticket, gone: threading.Event):
        """(kind, text) as they come, then ("done", result); None when the client hung up (it is cancelled)."""
        while True:
            try:
                yield ticket.events.get(timeout=WAIT_S)
            except queue.Empty:
                if self._client_gone():
                    gone.set()
                    self.server.service.runtime.wake()
                    yield None

    def _whole(self, ticket: Ticket, ids: dict, chat: bool, gone: threading.Event):
        text, reasoning = [], []
        for item in self._pieces(ticket, gone):
            if item is None:
                self.close_connection = True
                return None
            kind, payload = item
            if kind == "done":
                break
            (reasoning if kind == "thinking" else text).append(payload)
        r = payload
        if r.stop_reason == "error":
            raise ApiError(500, f"The answer failed: {r.error}", None, "server_error", "server_error")
        finish = FINISH.get(r.stop_reason, "stop")
        if chat:
            message = {"role": "assistant", "content": r.text}
            if r.reasoning:
                message["reasoning_content"] = r.reasoning
            choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
        else:
            choice = {"index": 0, "text": "".join(text), "finish_reason": finish, "logprobs": None}
        self.send_json(200, {**ids, "object": "chat.completion" if chat else "text_completion",
                             "choices": [choice], "usage": _usage(ticket, r), "ponder": _extension(ticket, r)})
        return r

    def _stream(self, ticket: Ticket, ids: dict, chat: bool, include_usage: bool, gone: threading.Event):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # the stream's end is the connection's end: no length to send
        self.end_headers()
        self.close_connection = True
        kind_name = "chat.completion.chunk" if chat else "text_completion"

        def send(choices: list, **extra) -> None:
            data = json.dumps({**ids, "object": kind_name, "choices": choices, **extra})
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()

        def delta(d: dict, finish=None) -> dict:
            if chat:
                return {"index": 0, "delta": d, "finish_reason": finish, "logprobs": None}
            return {"index": 0, "text": d.get("content", ""), "finish_reason": finish, "logprobs": None}

        try:
            if chat:
                send([delta({"role": "assistant", "content": ""})])
            for item in self._pieces(ticket, gone):
                if item is None:
                    return None
                kind, payload = item
                if kind == "done":
                    break
                send([delta({"reasoning_content": payload} if kind == "thinking" else {"content": payload})])
            r = payload
            if r.stop_reason == "error":
                self.wfile.write(("data: " + json.dumps(ApiError(500, f"The answer failed: {r.error}", None,
                                                                 "server_error", "server_error").body())
                                  + "\n\n").encode())
            else:
                send([delta({}, FINISH.get(r.stop_reason, "stop"))], ponder=_extension(ticket, r))
                if include_usage:
                    send([], usage=_usage(ticket, r))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            return r
        except (BrokenPipeError, ConnectionResetError, OSError):
            gone.set()
            self.server.service.runtime.wake()
            return None


class ApiServer(GuardedServer):
    """`ponder serve`: the service behind HTTP, on its own thread after `start()`. Loopback unless it has an API
    key; what one client may take is bounded by `limits` (guard.py)."""

    def __init__(self, service: ModelService, host: str = "127.0.0.1", port: int = 1234,
                 api_key: str | None = None, limits: Limits = Limits()) -> None:
        if not is_loopback(host) and not api_key:
            raise PonderError(f"Serving on {host} lets other computers use this model: give the server an API key "
                              "(`ponder serve --set-api-key`, then --api-key-from-keychain), or keep to 127.0.0.1.")
        self.service, self.api_key = service, api_key
        try:
            super().__init__((host, port), Handler, limits)
        except OSError as e:
            raise PonderError(f"Cannot listen on {host}:{port} ({e.strerror or e}); is another server using the "
                              "port? Choose another with --port.") from None
        self._thread: threading.Thread | None = None

    def note(self, line: str) -> None:
        self.service.log(line)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"

    def start(self) -> "ApiServer":
        self._thread = threading.Thread(target=self.serve_forever, name="ponder-serve", daemon=True)
        self._thread.start()
        self.service.log(f"serving {self.service.model_id} at {self.url}"
                         f"{' (API key required)' if self.api_key else ''}")
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(10)
