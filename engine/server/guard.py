"""What keeps one client from holding `ponder serve`: a bounded number of connections, a time limit for a request to
arrive, and bounded heads and bodies.

The standard library's server gives a thread to every connection and waits for ever on each: a client that sends a
byte a second (slowloris) or opens thousands of connections would hold threads and memory until the server stops.
Here a `Watchdog`, run by the server's own loop between accepts, gives every connection `Limits.request_s` to send
a whole request (line, headers and body; a kept-alive connection waiting for its next one too) and then shuts the
reading side of its socket: the handler's read returns what came and the client is told 408. Answers are not timed
(a long answer takes what it takes); a client that stops reading one is dropped by the socket's send timeout.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import logging
import re
import select
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from engine.server.protocol import ApiError

log = logging.getLogger(__name__)

LINGER_S = 1.0  # a refused connection stays open this long, so a request still arriving gets the 429, not a reset
MOST_LINGERING = 256
DISCARD_S = 2.0  # how long a refused request's unread body is read and dropped before the connection closes
# What the standard library refuses before a handler runs, as this server says it: (status, code, message).
# An unknown method is 405 like PUT or DELETE (the standard library says 501), HTTP/2 a bad request (505).
PARSE_ERRORS = {
    HTTPStatus.BAD_REQUEST: (400, "bad_request", "The request line does not parse as HTTP/1.1."),
    HTTPStatus.REQUEST_URI_TOO_LONG: (414, "uri_too_long", "The request line is longer than 64 KiB."),
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: (431, "headers_too_large", "The request's headers are too large: "
                                                 "at most 100 lines and {head} KiB together."),
    HTTPStatus.NOT_IMPLEMENTED: (405, "method_not_allowed", "This server has GET /v1/models, GET /health, "
                                 "POST /v1/chat/completions, /v1/completions and /v1/embeddings."),
    HTTPStatus.HTTP_VERSION_NOT_SUPPORTED: (400, "http_version_not_supported", "Only HTTP/1.0 and 1.1 are served."),
}
LONE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")  # only then is a walk over the strings needed


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one client may take. JSON parses to up to 26 times its size in Python objects (measured: 16 MiB of
    `[{},{},…]` took 416 MiB), so bodies over `big_body` share one budget of `body_bytes` from the first byte read
    until they are checked; a body waits (within its request's time) for its share. Bodies held at once stay
    under body_bytes + connections * big_body, their objects under 26 times that."""

    connections: int = 64  # open at once; more get 429 and are closed
    request_s: float = 30.0  # to send a whole request, line to last body byte
    write_s: float = 60.0  # a client that reads nothing of its answer for this long is dropped
    head_bytes: int = 64 * 2**10  # the headers of one request, together (the request line has its own 64 KiB)
    body_bytes: int = 16 * 2**20  # one body at most, and all big ones together
    big_body: int = 64 * 2**10  # a chat of some 16k tokens: bodies up to this size need no share of the budget


class ByteBudget:
    """Bytes that bodies being read and checked may hold together."""

    def __init__(self, total: int) -> None:
        self.total, self.used = total, 0
        self._cv = threading.Condition()

    def take(self, n: int, until: float) -> bool:
        """Wait until `n` bytes are free, or until `until` (time.monotonic()); False if they never were."""
        with self._cv:
            while self.used + n > self.total:
                left = until - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
            self.used += n
            return True

    def give(self, n: int) -> None:
        with self._cv:
            self.used -= n
            self._cv.notify_all()


def refusal(status: int, reason: str, error: ApiError, retry_after_s: int | None = None) -> bytes:
    """A whole HTTP response with OpenAI's error body, for sockets no handler will serve."""
    body = json.dumps(error.body()).encode()
    retry = f"Retry-After: {retry_after_s}\r\n" if retry_after_s is not None else ""
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"{retry}Connection: close\r\n\r\n").encode() + body


TOO_MANY = refusal(429, "Too Many Requests", ApiError(
    429, "The server has too many connections open; try again in a moment.", None, "too_many_connections",
    "rate_limit_error"), retry_after_s=1)


class HeadReader:
    """A connection's reader that counts the bytes of one request's headers: past `limit` it raises LineTooLong,
    which the handler answers with 431 before the headers fill memory (the standard library allows 100 lines of
    64 KiB each)."""

    def __init__(self, raw, limit: int) -> None:
        self.raw, self.limit = raw, limit
        self.left: int | None = None  # None: not reading headers

    def count_headers(self, on: bool) -> None:
        self.left = self.limit if on else None

    def readline(self, size: int = -1) -> bytes:
        line = self.raw.readline(size)
        if self.left is not None:
            self.left -= len(line)
            if self.left < 0:
                raise http.client.LineTooLong(f"headers over {self.limit // 1024} KiB")
        return line

    def __getattr__(self, name):
        return getattr(self.raw, name)


class Deadline:
    """One connection's time to send its request; `expired` once the watchdog has cut its reading side."""

    __slots__ = ("sock", "at", "expired")

    def __init__(self, sock: socket.socket, at: float) -> None:
        self.sock, self.at, self.expired = sock, at, False


class Watchdog:
    """Deadlines of connections waiting for their client, and refused sockets closing; `tick()` acts on both."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: set[Deadline] = set()
        self._lingering: deque[tuple[socket.socket, float]] = deque()

    def watch(self, sock: socket.socket, seconds: float) -> Deadline:
        deadline = Deadline(sock, time.monotonic() + seconds)
        with self._lock:
            self._waiting.add(deadline)
        return deadline

    def unwatch(self, deadline: Deadline | None) -> None:
        """Stop timing; after this returns, `deadline.expired` no longer changes."""
        if deadline is not None:
            with self._lock:
                self._waiting.discard(deadline)

    def linger(self, sock: socket.socket) -> None:
        """Close `sock` (already answered, its writing side shut) a moment from now, reading what still arrives."""
        with self._lock:
            if len(self._lingering) < MOST_LINGERING:
                self._lingering.append((sock, time.monotonic() + LINGER_S))
                return
        sock.close()

    def tick(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [d for d in self._waiting if d.at <= now]
            for d in late:
                self._waiting.discard(d)
                d.expired = True
            done = []
            while self._lingering and self._lingering[0][1] <= now:
                done.append(self._lingering.popleft()[0])
        for d in late:
            try:  # wakes the handler's blocked read with end-of-stream; its answer can still be written
                d.sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        for sock in done:
            _drain(sock)
            sock.close()

    def close(self) -> None:
        with self._lock:
            lingering, self._lingering = list(self._lingering), deque()
        for sock, _ in lingering:
            sock.close()


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(65536):
            pass
    except OSError:  # nothing more waiting (the socket does not block), or it is gone
        pass


def reject(sock: socket.socket, response: bytes, watchdog: Watchdog) -> None:
    """Answer a connection no handler will take, from the accepting thread: never block it."""
    try:
        sock.setblocking(False)
        _drain(sock)  # what already came: a close with unread data would reset the connection
        sock.send(response)  # a few hundred bytes: an empty send buffer takes them whole
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        sock.close()
        return
    watchdog.linger(sock)


def check_text(body) -> None:
    """ApiError unless every string in the parsed body is Unicode that UTF-8 can carry (JSON's \\u escapes can
    write half a surrogate pair, which Python keeps and the tokenizer cannot encode)."""
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ApiError(400, "The request has text that is not valid Unicode (half of a surrogate pair, "
                               "\\ud800-\\udfff, without its other half).", None, "invalid_unicode") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class GuardedHandler(BaseHTTPRequestHandler):
    """A request handler whose request must arrive within the server's limits, and whose every refusal, the
    standard library's own included, is OpenAI's error body. Subclasses add the endpoints, call `arrived()` once
    a request without a body is read, and `read_json()` for a body."""

    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.1"  # a request line too broken to name its version is still answered in 1.1
    server: "GuardedServer"
    _headers_sent = False
    _body_read = False
    _deadline: Deadline | None = None

    def log_message(self, fmt, *args) -> None:  # the service's log has one line per request instead
        log.debug("%s %s", self.address_string(), fmt % args)

    def setup(self) -> None:
        self.timeout = self.server.limits.write_s  # the socket's timeout: also bounds every send of an answer
        super().setup()
        self.rfile = HeadReader(self.rfile, self.server.limits.head_bytes)

    def send_response(self, code: int, message: str | None = None) -> None:
        self._headers_sent = True
        super().send_response(code, message)

    def handle_one_request(self) -> None:
        self._headers_sent = self._body_read = False
        self.headers = None  # not the last request's, if this one's never come
        self._deadline = self.server.watchdog.watch(self.connection, self.server.limits.request_s)
        try:
            super().handle_one_request()
        finally:
            self.server.watchdog.unwatch(self._deadline)

    def parse_request(self) -> bool:
        for _ in range(4):  # RFC 9112 2.2: empty lines before a request line are ignored
            if self.raw_requestline not in (b"\r\n", b"\n"):
                break
            self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return False
        if not self.raw_requestline.split():  # the standard library closes without a word
            self.send_error(HTTPStatus.BAD_REQUEST)
            return False
        self.rfile.count_headers(True)
        try:
            return super().parse_request()
        finally:
            self.rfile.count_headers(False)

    def is_late(self) -> bool:
        return self._deadline is not None and self._deadline.expired

    def arrived(self) -> None:
        """The request is all here: its clock stops; one the watchdog cut short is a 408."""
        self.server.watchdog.unwatch(self._deadline)
        late, self._deadline = self.is_late(), None
        if late:
            raise ApiError(408, f"The request did not arrive within {self.server.limits.request_s:g} s.", None,
                           "request_timeout")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What the standard library refuses (a request line or headers that do not parse or are too large, an
        unknown method) as an OpenAI error; 408 when the client was too slow to send it at all."""
        self.close_connection = True
        if self._headers_sent:
            return
        if self.is_late():
            status, code_, text = 408, "request_timeout", (f"The request did not arrive within "
                                                           f"{self.server.limits.request_s:g} s.")
        else:
            status, code_, text = PARSE_ERRORS.get(code, (400, "bad_request", "The request is not valid HTTP."))
            text = text.format(head=self.server.limits.head_bytes // 1024)
        self.command = self.command or "-"
        with contextlib.suppress(OSError):
            self.reply_error(ApiError(status, text, None, code_))

    def send_json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def reply_error(self, e: ApiError) -> None:
        unread = 0 if self._body_read else self.declared_length()
        if e.status in (408, 411, 413) or unread != 0:
            self.close_connection = True  # a body left unread would be read as the next request
        self.send_json(e.status, e.body())
        self.server.note(f"{self.command} {getattr(self, 'path', '-')} {e.status} {e.code or e.kind}")
        if unread and e.status != 408:
            self._discard(unread)

    def _discard(self, length: int) -> None:
        """Read and drop an unread body for a moment before closing: a client still sending it would otherwise get
        a reset instead of the answer (most clients send the whole body before they read)."""
        self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)  # the answer is complete: the client may read it now
            deadline = time.monotonic() + DISCARD_S
            while length > 0 and (left := deadline - time.monotonic()) > 0:
                readable, _, _ = select.select([self.connection], [], [], left)
                chunk = self.rfile.read1(min(length, 65536)) if readable else b""
                if not chunk:
                    break
                length -= len(chunk)

    def declared_length(self) -> int | None:
        """The Content-Length header (0 without one); None when it is not a count of bytes."""
        raw = self.headers.get("Content-Length", "0") if self.headers else "0"
        return int(raw) if raw.strip().isdigit() else None

    def read_json(self, check: Callable):
        """`check(body)` of the request's JSON body, read within the limits; ApiError for anything else. A big body
        holds its share of the budget until `check` has turned it into what the endpoint keeps."""
        if self.headers.get("Transfer-Encoding"):
            raise ApiError(411, "Send the body with a Content-Length (chunked bodies are not supported).", None,
                           "length_required")
        length, limits = self.declared_length(), self.server.limits
        if length is None:
            raise ApiError(400, "The Content-Length header is not a count of bytes.", None, "invalid_content_length")
        if length > limits.body_bytes:
            raise ApiError(413, f"The request body is larger than {limits.body_bytes // 2**20} MiB.", None,
                           "request_too_large")
        share = length if length > limits.big_body else 0
        if share and not self.server.bodies.take(share, self._deadline.at if self._deadline else time.monotonic()):
            raise ApiError(429, "The server is reading other large requests; try again in a moment.", None,
                           "too_many_large_requests", "rate_limit_error")
        try:
            raw = self.rfile.read(length) if length else b""
            self._body_read = True
            self.arrived()
            if len(raw) < length:
                self.close_connection = True
                raise ApiError(400, f"The body ended after {len(raw):,} of its {length:,} bytes.", None,
                               "incomplete_body")
            try:
                body = json.loads(raw)
            except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
                reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)
                raise ApiError(400, f"The request body is not valid JSON ({reason}).", None, "invalid_json") from None
            if LONE_SURROGATE.search(raw):
                check_text(body)
            del raw
            return check(body)
        finally:
            if share:
                self.server.bodies.give(share)


class GuardedServer(ThreadingHTTPServer):
    """The standard library's threading server with at most `limits.connections` connections (more are told 429
    and closed) and the watchdog run between accepts (`service_actions`, every half second)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # socketserver's 5 drops the connections of a burst of clients (they retry after 1 s)

    def __init__(self, address: tuple[str, int], handler: type[GuardedHandler], limits: Limits) -> None:
        self.limits = limits
        self.watchdog = Watchdog()
        self.bodies = ByteBudget(limits.body_bytes)
        self._open = 0
        self._open_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    @property
    def connections(self) -> int:
        """Connections being served now."""
        return self._open

    def note(self, line: str) -> None:
        """One line for the server's log (subclasses send it where their log is)."""
        log.info("%s", line)

    def process_request(self, request, client_address) -> None:
        with self._open_lock:
            full = self._open >= self.limits.connections
            if not full:
                self._open += 1
        if full:
            reject(request, TOO_MANY, self.watchdog)
            self.note(f"refused a connection from {client_address[0]}: {self.limits.connections} are open")
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread took it: it is not open
            with self._open_lock:
                self._open -= 1
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open -= 1

    def service_actions(self) -> None:
        self.watchdog.tick()

    def handle_error(self, request, client_address) -> None:
        """A connection's thread ended with an exception (socketserver would print it to stderr)."""
        if isinstance(sys.exc_info()[1], OSError):  # a client that reset or timed out: nothing to tell
            log.debug("connection from %s ended", client_address[0], exc_info=True)
        else:
            log.exception("connection from %s failed", client_address[0])

    def server_close(self) -> None:
        super().server_close()
        self.watchdog.close()
