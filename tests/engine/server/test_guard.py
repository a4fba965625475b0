"""`ponder serve` against clients that misbehave (bench/bad_clients.py): every bad request is a 4xx with OpenAI's
error body, slow senders and idle connections are cut off, connections are bounded, memory does not grow, only
loopback without an API key, and the next good request is served after each."""
from __future__ import annotations

import json
import random
import socket
import threading
import time
import urllib.error
import urllib.request

import psutil
import pytest

from bench.bad_clients import BAD_REQUESTS, CHAT, GOOD, exchange, mutated, post, read_response, slow_sender
from engine import ApiServer, PonderError
from engine.server import Limits

LIMIT_S = 1.5  # the guarded server's time to send a request: short, so the tests that wait for it are quick


@pytest.fixture(scope="module")
def guarded(gemma_serve):
    """A second server on the session's model with a short request time and few connections."""
    server = ApiServer(gemma_serve.service, "127.0.0.1", 0, limits=Limits(connections=6, request_s=LIMIT_S)).start()
    yield server
    server.stop()


def address(server) -> tuple[str, int]:
    return server.server_address[:2]


def healthy(server) -> bool:
    status, body = exchange(address(server), b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return status == 200 and body["status"] == "ok"


def is_openai_error(body) -> bool:
    error = (body or {}).get("error") or {}
    return isinstance(error.get("message"), str) and error["message"] and bool(error.get("type"))


@pytest.mark.parametrize("name, data, status, code", BAD_REQUESTS, ids=[r[0] for r in BAD_REQUESTS])
def test_every_malformed_request_is_a_4xx_with_an_openai_error(gemma_serve, name, data, status, code):
    got, body = exchange(address(gemma_serve), data)
    assert (got, body and body["error"]["code"]) == (status, code)
    assert is_openai_error(body)
    assert healthy(gemma_serve)


def test_an_oversized_body_sent_whole_still_gets_its_413(gemma_serve):
    """The openai package and urllib send the whole body before they read: the server drops it as it comes."""
    request = urllib.request.Request(gemma_serve.url + "/chat/completions", data=b" " * (17 * 2**20),
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=60)
    assert caught.value.code == 413 and json.loads(caught.value.read())["error"]["code"] == "request_too_large"


def test_a_refused_request_does_not_poison_its_kept_alive_connection(gemma_serve):
    """A body left unread after a 404 would be read as the next request: the server closes instead."""
    with socket.create_connection(address(gemma_serve), timeout=60) as s:
        s.sendall(post("/v1/nothing", b'{"a": 1}'))
        status, body = read_response(s)
        assert status == 404 and body["error"]["code"] == "unknown_url"
        assert s.recv(1) == b""  # closed, not waiting on the body as a request line
    assert healthy(gemma_serve)


def test_mutated_requests_never_crash_or_hang_the_server(gemma_serve):
    rng = random.Random(7)
    for _ in range(40):
        status, body = exchange(address(gemma_serve), mutated(rng))
        # A cut Content-Length can leave a valid request (200); otherwise a 4xx with a body, never a 5xx or silence
        assert status is not None and (status == 200 or 400 <= status < 500 and is_openai_error(body)), (status, body)
    assert healthy(gemma_serve)


def test_a_client_sending_a_byte_a_second_is_cut_off_and_others_are_served(guarded):
    """slowloris: the request never arrives in time; the server answers 408 and keeps serving everyone else."""
    result = {}
    sender = threading.Thread(target=lambda: result.update(slow=slow_sender(
        address(guarded), b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 200 + b"\r\n\r\n", 0.25)))
    sender.start()
    assert healthy(guarded)  # while it dribbles
    sender.join(60)
    (status, body), took = result["slow"]
    assert status == 408 and body["error"]["code"] == "request_timeout"
    assert took < 30  # a limit for a hang, not a speed test: the default limit alone is 30 s
    assert healthy(guarded)


def test_a_body_that_stops_coming_is_a_408(guarded):
    with socket.create_connection(address(guarded), timeout=60) as s:
        s.sendall(f"POST {CHAT} HTTP/1.1\r\nContent-Length: 500\r\n\r\n{{\"messages\"".encode())
        status, body = read_response(s)
    assert status == 408 and is_openai_error(body)


def test_connections_are_bounded_and_idle_ones_closed(guarded):
    idle = [socket.create_connection(address(guarded), timeout=60) for _ in range(guarded.limits.connections)]
    try:
        deadline = time.monotonic() + 30
        while guarded.connections < guarded.limits.connections and time.monotonic() < deadline:
            time.sleep(0.05)
        status, body = exchange(address(guarded), b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 429 and body["error"]["code"] == "too_many_connections"
        for s in idle:  # each idle connection is closed once its time to send a request is up
            assert s.recv(1) == b""
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 30
    while guarded.connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert guarded.connections == 0 and healthy(guarded)


def test_memory_stays_flat_under_large_bad_bodies(gemma_serve):
    """1 MiB bodies parse to many objects; once warm, RSS does not grow. Warm means every malloc arena has held
    some: each connection's thread may take another of glibc's arenas (up to 8 per core), and each keeps what
    it freed, so RSS climbs in steps over the first rounds (with MALLOC_ARENA_MAX=1 it is flat from the first)."""
    data = post(CHAT, b"[" + b"0," * (2**19 - 2) + b"0]")  # a list of half a million zeros: the wrong type

    def round_of(n: int) -> None:
        def one() -> None:
            assert exchange(address(gemma_serve), data)[0] == 400
        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    for _ in range(16):
        round_of(8)
    warm = psutil.Process().memory_info().rss
    for _ in range(16):
        round_of(8)
    assert psutil.Process().memory_info().rss - warm < 32 * 2**20
    assert healthy(gemma_serve)


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "192.168.1.10", "my-laptop.local"])
def test_any_address_but_loopback_needs_an_api_key(gemma_serve, host):
    with pytest.raises(PonderError, match="API key"):
        ApiServer(gemma_serve.service, host, 0)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1"])
def test_loopback_is_served_without_a_key(gemma_serve, host):
    try:
        server = ApiServer(gemma_serve.service, host, 0).start()
    except PonderError as e:  # a machine without IPv6 on loopback
        pytest.skip(str(e))
    try:
        assert healthy(server)
    finally:
        server.stop()


def test_the_next_good_request_is_answered(gemma_serve):
    """After everything above, the model still answers."""
    status, body = exchange(address(gemma_serve), post(CHAT, json.dumps({**GOOD, "temperature": 0}).encode()))
    assert status == 200 and body["choices"][0]["message"]["content"] is not None
