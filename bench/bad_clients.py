"""Clients that misbehave on purpose against `ponder serve` (engine/server/guard.py), shared by its tests and
`ponder bench --only robustness`: requests that are not HTTP, headers and bodies over the limits, bodies that are
not JSON or have the wrong types, a sender of a byte at a time, more connections than the server takes."""
from __future__ import annotations

import json
import random
import select
import socket
import time

CHAT = "/v1/chat/completions"
GOOD = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            .encode() + extra + b"\r\n" + body)


# (name, bytes sent, the status expected, the error code expected); the server's limits are the defaults.
BAD_REQUESTS = [
    ("not http", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "bad_request"),
    ("http/2", b"GET /health HTTP/2.0\r\n\r\n", 400, "http_version_not_supported"),
    ("unknown method", b"BREW /v1/models HTTP/1.1\r\n\r\n", 405, "method_not_allowed"),
    ("request line over 64 KiB", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, "uri_too_long"),
    ("headers over 64 KiB", b"GET /health HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 60_000 + b"\r\nX-More: "
     + b"b" * 10_000 + b"\r\n\r\n", 431, "headers_too_large"),
    ("150 headers", b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(150)) + b"\r\n", 431,
     "headers_too_large"),
    ("negative length", f"POST {CHAT} HTTP/1.1\r\nContent-Length: -5\r\n\r\n".encode(), 400,
     "invalid_content_length"),
    ("chunked body", f"POST {CHAT} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n".encode(), 411,
     "length_required"),
    ("body over 16 MiB", f"POST {CHAT} HTTP/1.1\r\nContent-Length: {17 * 2**20}\r\n\r\n".encode(), 413,
     "request_too_large"),
    ("not json", post(CHAT, b"{'messages': nope"), 400, "invalid_json"),
    ("not utf-8", post(CHAT, b'{"messages": "\xff\xfe"}'), 400, "invalid_json"),
    ("nested 100k deep", post(CHAT, b"[" * 100_000 + b"]" * 100_000), 400, "invalid_json"),
    ("a 5000-digit number", post(CHAT, b'{"max_tokens": ' + b"9" * 5000 + b"}"), 400, "invalid_json"),
    ("half a surrogate pair", post(CHAT, b'{"messages": [{"role": "user", "content": "\\ud800"}]}'), 400,
     "invalid_unicode"),
    ("content a number", post(CHAT, json.dumps({"messages": [{"role": "user", "content": 5}]}).encode()), 400,
     "invalid_type"),
    ("temperature a string", post(CHAT, json.dumps({**GOOD, "temperature": "hot"}).encode()), 400, "invalid_type"),
    ("stream a string", post(CHAT, json.dumps({**GOOD, "stream": "yes"}).encode()), 400, "invalid_type"),
    ("max_tokens a float", post(CHAT, json.dumps({**GOOD, "max_tokens": 2.5}).encode()), 400, "invalid_type"),
    ("temperature NaN", post(CHAT, b'{"messages": [{"role": "user", "content": "Hi"}], "temperature": NaN}'), 400,
     "invalid_value"),
    ("embeddings of numbers", post("/v1/embeddings", b'{"input": [1, 2, 3]}'), 400, "invalid_type"),
    ("prompt an object", post("/v1/completions", b'{"prompt": {"a": 1}}'), 400, "invalid_type"),
]


def exchange(address: tuple[str, int], data: bytes, timeout: float = 60.0) -> tuple[int | None, dict | None]:
    """Send `data` on a new connection and read until the server closes or answers once: (status, JSON body), or
    (None, None) when the connection ended with no answer."""
    with socket.create_connection(address, timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:  # the server answered and closed before it had everything; its answer may still be there
            pass
        return read_response(s)


def read_response(s: socket.socket) -> tuple[int | None, dict | None]:
    """One response from `s`: (status, JSON body or None); (None, None) when it closed without one."""
    received = b""
    try:
        while b"\r\n\r\n" not in received:
            chunk = s.recv(65536)
            if not chunk:
                return None, None
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
    except (ConnectionResetError, TimeoutError):
        return None, None
    status = int(head.split(b" ")[1])
    try:
        return status, json.loads(body[:length])
    except ValueError:
        return status, None


def mutated(rng: random.Random) -> bytes:
    """A chat request with one thing wrong: the body cut, a field of the wrong type, random bytes in it, or a
    Content-Length that says more or less than was sent."""
    body = json.dumps({**GOOD, "temperature": 0}).encode()
    how = rng.randrange(5)
    if how == 0:
        return post(CHAT, body[:rng.randrange(len(body))])
    if how == 1:
        field = rng.choice(["messages", "max_tokens", "temperature", "stop", "stream", "model", "ponder", "n"])
        value = rng.choice([None, 3, -1, 2.5, "x", [], {}, [1], True, "\u0000", 1e308])
        return post(CHAT, json.dumps({**GOOD, field: value}).encode())
    if how == 2:
        at = rng.randrange(len(body))
        return post(CHAT, body[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + body[at:])
    if how == 3:
        return post(CHAT, body).replace(f"Content-Length: {len(body)}".encode(),
                                        f"Content-Length: {len(body) - rng.randint(1, len(body))}".encode())
    return bytes(rng.randrange(256) for _ in range(rng.randint(1, 200))) + b"\r\n\r\n"


def slow_sender(address: tuple[str, int], data: bytes, every_s: float) -> tuple[tuple[int | None, dict | None], float]:
    """Send `data` a byte every `every_s` seconds (slowloris) until the server answers or closes: (status, body)
    and the seconds it took."""
    start = time.monotonic()
    with socket.create_connection(address, timeout=60) as s:
        for byte in data:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
            if select.select([s], [], [], every_s)[0]:  # an answer, or the server closing
                break
        return read_response(s), time.monotonic() - start
