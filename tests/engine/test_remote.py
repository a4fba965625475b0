"""The remote engine against llama-cpp-python's own OpenAI-compatible server on loopback: streaming, history,
cancel, the thinking budget cut at exactly the budget, and answers from documents searched here."""
from __future__ import annotations

from dataclasses import asdict

import pytest

from engine import AskOptions, ConversationStarted, SamplingSettings, ThinkingRequest, Token
from engine.remote import RemoteEndpoint, RemoteEngine, RemoteError, TagSplitter


def greedy(**kw) -> AskOptions:
    return AskOptions(sampling=SamplingSettings(temperature=0.0, seed=1), **kw)


def test_remote_answers_stream_and_are_kept_in_history(gemma_server, ponder_home):
    engine = RemoteEngine(RemoteEndpoint(gemma_server))
    tokens = []
    answer = engine.ask("What is the capital of France?", options=greedy(max_tokens=16), on_event=tokens.append)
    assert answer.text and answer.backend.startswith("remote")
    assert "".join(t.text for t in tokens if isinstance(t, Token)).strip() == answer.text
    again = engine.ask("And of Italy?", conversation_id=answer.conversation_id, options=greedy(max_tokens=16))
    messages = engine.history.messages(again.conversation_id)
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[1].content == answer.text and messages[-1].state == "complete"


def test_remote_answers_from_documents_searched_here(gemma_server, atlas):
    """Retrieval stays local; the numbered passages travel in the prompt; sources and the prompt come back."""
    engine = RemoteEngine(RemoteEndpoint(gemma_server, n_ctx=1024), library=atlas.library)
    events = []
    answer = engine.ask(atlas.question, options=greedy(max_tokens=12, collection="atlas"), on_event=events.append)
    assert events[0] == ConversationStarted(answer.conversation_id)
    assert [s.path for s in answer.sources] == [str(atlas.source)]
    assert "[1] freedonia.md" in answer.context and answer.context in answer.prompt
    assert atlas.answer in answer.text
    stored = engine.history.messages(answer.conversation_id)
    assert stored[-1].meta["sources"] == [asdict(s) for s in answer.sources]
    assert stored[-1].meta["prompt"] == answer.prompt
    assert engine.history.conversation(answer.conversation_id).settings["collection"] == "atlas"


def test_remote_cancel_stops_the_stream(gemma_server):
    engine = RemoteEngine(RemoteEndpoint(gemma_server))
    seen = []
    answer = engine.ask("Write a long story about the sea.", options=greedy(max_tokens=300),
                        on_event=seen.append, is_cancelled=lambda: len(seen) >= 3)
    assert answer.stop_reason == "cancelled" and answer.usage.answer_tokens <= 4
    assert engine.history.messages(answer.conversation_id)[-1].state == "cancelled"


@pytest.mark.parametrize("budget", [1, 8, 32])
def test_remote_thinking_stops_at_exactly_the_budget(thinking_server, budget):
    engine = RemoteEngine(RemoteEndpoint(thinking_server, prefilled_think=True))
    answer = engine.ask("Think about it.", options=greedy(max_tokens=8, thinking=ThinkingRequest(budget)))
    report = answer.thinking
    assert report.used <= budget
    assert report.closed_by in ("budget", "model")
    if budget <= 8:  # seeded: this random model does not close its span by itself that soon
        assert report.closed_by == "budget"
    if report.closed_by == "budget":
        assert report.used == budget and answer.usage.answer_tokens >= 1  # it went on, with thinking closed


def test_remote_budget_off_shows_no_thinking(thinking_server):
    engine = RemoteEngine(RemoteEndpoint(thinking_server, prefilled_think=True))
    answer = engine.ask("Think about it.", options=greedy(max_tokens=8, thinking=ThinkingRequest(0)))
    assert answer.thinking.used == 0 and answer.reasoning == "" and answer.thinking.closed_by == "off"


def test_an_unreachable_server_is_a_sentence():
    with pytest.raises(RemoteError, match="Cannot reach"):
        RemoteEngine(RemoteEndpoint("http://127.0.0.1:9/v1")).models()


def test_tags_split_across_pieces():
    s = TagSplitter()
    out = [p for piece in ["Hi <th", "ink>plan", "ning</thi", "nk>Answer"] for p in s.feed(piece)]
    out += list(s.flush())
    joined = {}
    for kind, text in out:
        joined[kind] = joined.get(kind, "") + text
    assert joined == {"answer": "Hi Answer", "thinking": "planning"}
    prefilled = TagSplitter(inside=True)
    assert list(prefilled.feed("reasoning</think>done")) == [("thinking", "reasoning"), ("answer", "done")]


def test_remote_answers_stop_at_max_tokens(gemma_server):
    answer = RemoteEngine(RemoteEndpoint(gemma_server)).ask("Write a long story about the sea.",
                                                              options=greedy(max_tokens=12))
    assert answer.usage.answer_tokens == 12 and answer.stop_reason == "length"
