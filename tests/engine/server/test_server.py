"""`ponder serve` with real clients: the openai package (streaming and not, reasoning fields, embeddings),
raw HTTP for every kind of bad request, concurrent clients, a client that hangs up, and Ponder's own remote
engine (`ponder ask --remote`)."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import openai
import pytest

from engine import ApiServer, RemoteEndpoint, RemoteEngine, ThinkingRequest
from engine.options import AskOptions
from engine.runtime.loop import SamplingSettings

STORY = [{"role": "user", "content": "Write a long story about the sea."}]
CAPITAL = [{"role": "user", "content": "What is the capital of France?"}]


def client(server, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=key, max_retries=0, timeout=1200)


def raw(server, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """(status, parsed JSON body) of one request; an HTTP error is a response, not an exception."""
    request = urllib.request.Request(server.url.removesuffix("/v1") + path, data=body, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=1200) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def health(server) -> dict:
    return raw(server, "GET", "/health")[1]


def test_models_and_health(gemma_serve):
    models = client(gemma_serve).models.list()
    ids = [m.id for m in models.data]
    assert ids[0] == gemma_serve.service.model_id and "all-minilm-l6-v2" in ids
    status, body = raw(gemma_serve, "GET", "/health")
    assert status == 200 and body["status"] == "ok" and body["slots"] == 2


def test_chat_with_the_openai_client(gemma_serve):
    model = gemma_serve.service.model_id
    reply = client(gemma_serve).chat.completions.create(model=model, messages=CAPITAL, max_tokens=12,
                                                        temperature=0)
    choice = reply.choices[0]
    assert "Paris" in choice.message.content and choice.finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens >= 1
    assert reply.usage.completion_tokens_details.reasoning_tokens == 0


def test_streaming_with_the_openai_client(gemma_serve):
    stream = client(gemma_serve).chat.completions.create(
        model=gemma_serve.service.model_id, messages=STORY, max_tokens=10, temperature=0, stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert text.strip() and len(finishes) == 1
    assert 1 <= chunks[-1].usage.completion_tokens <= 10 and not chunks[-1].choices


def test_completions_endpoint(gemma_serve):
    c = client(gemma_serve)
    reply = c.completions.create(model=gemma_serve.service.model_id, prompt="The capital of France is",
                                 max_tokens=6, temperature=0)
    assert reply.choices[0].text.strip() and reply.usage.completion_tokens <= 6
    streamed = c.completions.create(model=gemma_serve.service.model_id, prompt="Once upon a time", max_tokens=5,
                                    temperature=0, stream=True)
    assert "".join(ch.choices[0].text for ch in streamed if ch.choices).strip()


def test_embeddings_come_from_the_document_embedder(gemma_serve, embedder):
    c = client(gemma_serve)
    reply = c.embeddings.create(model="all-minilm-l6-v2", input=["a red apple", "a green pear"])  # base64 by default
    assert len(reply.data) == 2 and len(reply.data[0].embedding) == embedder.dim
    status, body = raw(gemma_serve, "POST", "/v1/embeddings", json.dumps({"input": "x"}).encode())
    assert status == 200 and len(body["data"][0]["embedding"]) == embedder.dim


@pytest.mark.parametrize("method, path, body, status, code", [
    ("POST", "/v1/chat/completions", b"{not json", 400, "invalid_json"),
    ("POST", "/v1/chat/completions", b"", 400, "invalid_json"),
    ("POST", "/v1/chat/completions", b"[1, 2]", 400, "invalid_type"),
    ("POST", "/v1/chat/completions", json.dumps({"messages": "hi"}).encode(), 400, "invalid_type"),
    ("POST", "/v1/chat/completions", json.dumps({"model": "gpt-9", "messages": CAPITAL}).encode(), 404,
     "model_not_found"),
    ("POST", "/v1/chat/completions", json.dumps({"messages": CAPITAL, "max_tokens": "many"}).encode(), 400,
     "invalid_type"),
    ("POST", "/v1/chat/completions", json.dumps({"messages": [{"role": "user", "content": "word " * 3000}]}).encode(),
     400, "context_length_exceeded"),
    ("POST", "/v1/completions", json.dumps({"prompt": "word " * 3000}).encode(), 400, "context_length_exceeded"),
    ("POST", "/v1/chat/completions", json.dumps({"messages": CAPITAL, "ponder": {"collection": "no such"}}).encode(),
     404, "collection_not_found"),
    ("POST", "/v1/embeddings", json.dumps({"model": "nope", "input": "x"}).encode(), 404, "model_not_found"),
    ("POST", "/v1/nothing", b"{}", 404, "unknown_url"),
    ("GET", "/v1/chat/completions", None, 405, "method_not_allowed"),
    ("DELETE", "/v1/models", None, 405, "method_not_allowed"),
    ("GET", "/elsewhere", None, 404, "unknown_url"),
])
def test_every_bad_request_is_a_clear_4xx(gemma_serve, method, path, body, status, code):
    got, answer = raw(gemma_serve, method, path, body)
    assert got == status
    error = answer["error"]
    assert error["code"] == code and error["message"] and error["type"]


def test_the_openai_client_raises_its_own_errors(gemma_serve):
    c = client(gemma_serve)
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="gpt-9", messages=CAPITAL)
    with pytest.raises(openai.BadRequestError, match="reasoning_effort"):
        c.chat.completions.create(model=gemma_serve.service.model_id, messages=CAPITAL, reasoning_effort="extreme")


def test_concurrent_clients_each_get_their_answer(gemma_serve):
    before = health(gemma_serve)["requests"]
    results = {}

    def ask(i):
        stream = client(gemma_serve).chat.completions.create(
            model=gemma_serve.service.model_id, messages=[{"role": "user", "content": f"Count to {i + 3}."}],
            max_tokens=6, temperature=0, stream=True)
        results[i] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]  # one more than the slots: one waits
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert sorted(results) == [0, 1, 2] and all(text.strip() for text in results.values())
    assert health(gemma_serve)["requests"] == before + 3


def _wait_idle(server, seconds: float = 120) -> bool:
    deadline = time.monotonic() + seconds  # a limit for a hang, not a speed test
    while time.monotonic() < deadline:
        h = health(server)
        if h["active"] == 0 and h["queued"] == 0:
            return True
        time.sleep(0.1)
    return False


def test_a_client_that_hangs_up_frees_its_slot(gemma_serve):
    host, port = gemma_serve.server_address[:2]
    body = json.dumps({"messages": STORY, "max_tokens": 1000, "stream": True}).encode()
    before = health(gemma_serve)["requests"]
    with socket.create_connection((host, port)) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        received = b""
        while received.count(b"data:") < 3:
            received += s.recv(4096)
    assert _wait_idle(gemma_serve)
    assert health(gemma_serve)["requests"] == before + 1


def test_an_api_key_is_required_once_set(gemma_serve):
    keyed = ApiServer(gemma_serve.service, "127.0.0.1", 0, api_key="s3cret").start()
    try:
        assert raw(keyed, "GET", "/v1/models")[0] == 401
        with pytest.raises(openai.AuthenticationError):
            client(keyed, "wrong").models.list()
        assert client(keyed, "s3cret").models.list().data
    finally:
        keyed.stop()
    assert "s3cret" not in "\n".join(gemma_serve.service.log_lines)


def test_answers_from_a_collection_carry_their_sources(gemma_serve, atlas):
    engine = gemma_serve.service.engine
    engine.library = atlas.library
    try:
        status, body = raw(gemma_serve, "POST", "/v1/chat/completions", json.dumps({
            "messages": [{"role": "user", "content": atlas.question}], "max_tokens": 12, "temperature": 0,
            "ponder": {"collection": "atlas"}}).encode())
    finally:
        engine.library = None
    assert status == 200
    assert [s["path"] for s in body["ponder"]["sources"]] == [str(atlas.source)]
    assert atlas.answer in body["choices"][0]["message"]["content"]


def test_ponder_ask_remote_against_ponder_serve(gemma_serve, ponder_home):
    remote = RemoteEngine(RemoteEndpoint(gemma_serve.url, n_ctx=1024))
    options = AskOptions(max_tokens=12, sampling=SamplingSettings(temperature=0.0, seed=1))
    answer = remote.ask("What is the capital of France?", options=options)
    assert "Paris" in answer.text and answer.backend.startswith("remote")
    again = remote.ask("And of Italy?", conversation_id=answer.conversation_id, options=options)
    assert again.text and [m.role for m in remote.history.messages(again.conversation_id)] == [
        "user", "assistant", "user", "assistant"]


# -- thinking, on the 0.5B chat model ---------------------------------------------------------------
WORD_PROBLEM = [{"role": "user", "content": "A pen costs 3 dollars. How much do 7 pens cost?"}]


@pytest.mark.slow
def test_reasoning_content_and_its_tokens_with_a_budget(chat_serve):
    c = client(chat_serve)
    reply = c.chat.completions.create(model=chat_serve.service.model_id, messages=WORD_PROBLEM, max_tokens=16,
                                      temperature=0, extra_body={"thinking_budget_tokens": 10})
    message = reply.choices[0].message
    used = reply.usage.completion_tokens_details.reasoning_tokens
    assert message.reasoning_content and 0 < used <= 10
    assert reply.model_extra["ponder"]["thinking"]["budget"] == 10
    assert reply.usage.completion_tokens >= used + 1  # it answered after thinking
    streamed = c.chat.completions.create(model=chat_serve.service.model_id, messages=WORD_PROBLEM, max_tokens=16,
                                         temperature=0, stream=True, stream_options={"include_usage": True},
                                         extra_body={"ponder": {"budget": 10}})
    chunks = list(streamed)
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    assert reasoning.strip() and chunks[-1].usage.completion_tokens_details.reasoning_tokens <= 10


@pytest.mark.slow
def test_reasoning_effort_none_and_no_field_give_no_reasoning(chat_serve):
    c = client(chat_serve)
    for extra in ({"reasoning_effort": "none"}, {}, {"chat_template_kwargs": {"enable_thinking": False}}):
        reply = c.chat.completions.create(model=chat_serve.service.model_id, messages=CAPITAL, max_tokens=8,
                                          temperature=0, extra_body=extra)
        assert getattr(reply.choices[0].message, "reasoning_content", None) is None
        assert reply.usage.completion_tokens_details.reasoning_tokens == 0


@pytest.mark.slow
def test_the_remote_engine_sees_the_budget_kept(chat_serve, ponder_home):
    remote = RemoteEngine(RemoteEndpoint(chat_serve.url, n_ctx=1024))
    answer = remote.ask("A pen costs 3 dollars. How much do 7 pens cost?", options=AskOptions(
        max_tokens=16, sampling=SamplingSettings(temperature=0.0), thinking=ThinkingRequest(8)))
    assert 0 < answer.thinking.used <= 8 and answer.reasoning and answer.text


@pytest.mark.slow
def test_auto_chooses_a_budget_per_request(chat_serve):
    """Auto's zero-thought probe rides in the prompt's last decode and is taken back out; its choice is reported."""
    status, body = raw(chat_serve, "POST", "/v1/chat/completions", json.dumps({
        "messages": WORD_PROBLEM, "max_tokens": 8, "temperature": 0, "ponder": {"budget": "auto"}}).encode())
    assert status == 200
    thinking = body["ponder"]["thinking"]
    assert "entropy" in thinking["auto_reason"] and thinking["used"] <= thinking["budget"]
    assert body["choices"][0]["message"]["content"]
