"""Reading ahead a question still being typed: its passages and everything before its own words go into the cache,
the answer when it is asked is the one a plain ask gives, a stop comes within one chunk, and a conversation's
cached turns are never thrown away for a guess (a follow-up's new passages are read after them)."""
from __future__ import annotations

import pytest

from engine import AskOptions, Engine, LoadSettings, SamplingSettings, ThinkingRequest
from engine.engine import READ_AHEAD_WAIT_S
from engine.rag.library import Library, Passages
from engine.runtime.session import chunk_within

QUESTION = "How many crates does the warehouse in town 17 store?"
DRAFT = "How many crates does the warehouse in town 17"  # the question without its last word
OPTIONS = AskOptions(max_tokens=12, collection="towns", sampling=SamplingSettings(temperature=0, repeat_penalty=1.0),
                     thinking=ThinkingRequest(0))


@pytest.fixture(scope="module")
def library(tmp_path_factory, embedder):
    docs = tmp_path_factory.mktemp("towns")
    for i in range(60):  # too much to send whole: questions get passages
        (docs / f"f{i}.txt").write_text(f"Record {i}: the warehouse in town {i} stores {i * 7} crates of pears. " * 4)
    (docs / "lighthouse.txt").write_text("The lighthouse keeper polished the lens every morning with chalk. " * 4)
    lib = Library(tmp_path_factory.mktemp("lib") / "index.sqlite3", embedder)
    lib.index("towns", [str(docs)])
    # One passage a question: the town files are alike but for their numbers, so which two come second and third
    # changes with any word of the question (a real draft's passages differ like that too; the bench counts how
    # often). These tests need a draft that finds its question's passages, and one that does not.
    lib.passages = Passages(k=1)
    yield lib
    lib.store.close()  # not lib.close(): the embedder is the session's


@pytest.fixture(scope="module")
def gemma(engine, library):
    engine.library = library
    yield engine
    engine.library = None


@pytest.fixture(scope="module")
def reader(tiny_model, library):
    """The tiny generated model: for tests that count tokens read, whatever the words say."""
    e = Engine()
    e.load(tiny_model, LoadSettings(n_ctx=2048, n_threads=1))
    e.library = library
    yield e
    e.unload()


@pytest.fixture(scope="module")
def plain(gemma):
    """The question asked on an empty cache, nothing read ahead."""
    gemma.session.clear()
    return gemma.ask(QUESTION, options=OPTIONS)


def test_read_ahead_then_ask_gives_the_plain_answer_reading_only_the_question(gemma, plain):
    gemma.session.clear()
    read = gemma.read_ahead(DRAFT, options=OPTIONS)
    assert not read.skipped and not read.stopped and read.evaluated > 100 and read.cached == read.start
    assert read.context == plain.context  # the draft found the question's passages
    answer = gemma.ask(QUESTION, options=OPTIONS)
    assert answer.text == plain.text and answer.prompt == plain.prompt and answer.sources == plain.sources
    assert answer.usage.reused_tokens == read.start  # everything before the question's own words
    assert answer.usage.evaluated_tokens == answer.usage.prompt_tokens - read.start < 40


def test_a_read_ahead_of_other_passages_changes_nothing_in_the_answer(gemma, plain):
    gemma.session.clear()
    read = gemma.read_ahead("What is kept in the warehouse of town 23", options=OPTIONS)
    assert read.evaluated and read.context != plain.context
    answer = gemma.ask(QUESTION, options=OPTIONS)
    assert answer.text == plain.text and answer.prompt == plain.prompt
    assert answer.usage.reused_tokens < read.start  # the passages differ: only the start they share was of use


def test_a_read_ahead_stops_within_one_chunk_and_keeps_what_it_read(reader):
    reader.session.clear()
    chunk = chunk_within(READ_AHEAD_WAIT_S, reader.session.read_tok_s)
    seen = []
    read = reader.read_ahead(DRAFT, options=OPTIONS, on_read=lambda done, total: seen.append(done),
                             is_cancelled=lambda: len(seen) > 2)
    assert read.stopped and seen == [0, chunk, 2 * chunk]
    assert read.evaluated == read.cached == len(reader.session.tokens) == 2 * chunk < read.start
    answer = reader.ask(QUESTION, options=OPTIONS)
    assert answer.usage.reused_tokens == 2 * chunk  # asking goes on from where the read-ahead stopped


def test_a_follow_up_draft_reads_its_new_passages_after_the_conversations_cached_turns(reader):
    reader.session.clear()
    first = reader.ask(QUESTION, options=OPTIONS)
    cached = list(reader.session.tokens)
    reader.library.passages = Passages(k=2)  # a follow-up is searched with the question before it: town 17 first
    try:
        other = reader.read_ahead("And what did the lighthouse keeper polish", conversation_id=first.conversation_id,
                                  options=OPTIONS)
        assert any(s.path.endswith("lighthouse.txt") for s in other.sources)  # a new passage, for its own turn
        assert not other.skipped and other.evaluated > 0
        # What was cached stays up to the first answer, which history replays without the span its prompt
        # pre-closed (as any follow-up does).
        assert reader.session.common_prefix(cached) >= first.usage.prompt_tokens - 16
        follow = reader.ask("And what did the lighthouse keeper polish?", conversation_id=first.conversation_id,
                            options=OPTIONS)
    finally:
        reader.library.passages = Passages(k=1)
    assert follow.context == other.context and follow.usage.reused_tokens >= other.start


def test_a_draft_whose_passages_start_afresh_never_throws_away_the_cached_turns(reader, monkeypatch):
    reader.session.clear()
    first = reader.ask(QUESTION, options=OPTIONS)
    cached = list(reader.session.tokens)
    context = reader.library.context
    # A follow-up whose kept passages no longer fit starts afresh: new passages in the system prompt, before the turns.
    monkeypatch.setattr(reader.library, "context", lambda *a, **kw: context(*a, **{**kw, "kept": None}))
    monkeypatch.setattr(reader.library, "passages", Passages(k=2))  # town 17, then the lighthouse
    other = reader.read_ahead("What did the lighthouse keeper polish", conversation_id=first.conversation_id,
                              options=OPTIONS)
    assert other.context != first.context
    assert other.skipped and other.evaluated == 0 and reader.session.tokens == cached
    monkeypatch.undo()
    same = reader.read_ahead("Say that again about town 17", conversation_id=first.conversation_id, options=OPTIONS)
    assert not same.skipped and same.context == first.context  # nothing new: the kept passages, then the turn
    follow = reader.ask("Say that again about town 17 please.", conversation_id=first.conversation_id,
                        options=OPTIONS)
    assert follow.usage.reused_tokens >= same.start
