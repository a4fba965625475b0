"""Which passages a question gets: a follow-up keeps the ones before it first and unchanged, the same text is
never sent twice, and passages can be cut to the sentences around their match."""
from __future__ import annotations

import pytest

from engine import AskOptions, Engine, LoadSettings, SamplingSettings, ThinkingRequest
from engine.rag.library import MORE_SOURCES, Library, Passages, around_match

count = lambda text: len(text) // 4 + 1  # the tokens are not what these tests are about


@pytest.fixture(scope="module")
def towns(tmp_path_factory):
    docs = tmp_path_factory.mktemp("towns")
    for i in range(40):
        (docs / f"f{i}.txt").write_text(f"Record {i}: the warehouse in town {i} stores {i * 7} crates of pears. " * 8)
    (docs / "copy").mkdir()
    (docs / "copy" / "f17.txt").write_text((docs / "f17.txt").read_text())  # the same file in two folders
    return docs


@pytest.fixture(scope="module")
def library(towns, tmp_path_factory, embedder):
    lib = Library(tmp_path_factory.mktemp("lib") / "index.sqlite3", embedder)
    lib.index("towns", [str(towns)])
    yield lib
    lib.store.close()  # not lib.close(): the embedder is the session's


@pytest.fixture(scope="module")
def reader(tiny_model):
    """The tiny generated model: these tests count the tokens read, whatever the words say."""
    e = Engine()
    e.load(tiny_model, LoadSettings(n_ctx=2048, n_threads=1))
    yield e
    e.unload()


def test_the_same_text_in_two_files_is_sent_once(library):
    ctx = library.context("towns", "How many crates does town 17 store?", count, 4000)
    texts = [b.split("\n", 1)[1] for b in ctx.text.split("\n\n")]
    assert len(texts) == len(set(texts)) == len(ctx.sources)
    assert sum(s.path.endswith("f17.txt") for s in ctx.sources) == 1


def test_a_follow_up_keeps_the_passages_before_it_first_and_adds_only_new_ones(library):
    first = library.context("towns", "How many crates does town 17 store?", count, 4000, passages=Passages(3))
    same = library.context("towns", "How many crates does town 17 store?", count, 4000, kept=first,
                           passages=Passages(3))
    assert same.text == first.text and same.sources == first.sources  # nothing new: byte for byte the same
    more = library.context("towns", "What does the warehouse in town 23 store?", count, 4000, kept=first,
                           passages=Passages(3))
    n = len(first.sources)
    assert more.text.startswith(first.text + f"\n\n[{n + 1}] ")
    assert more.sources[:n] == first.sources and [s.n for s in more.sources] == list(range(1, len(more.sources) + 1))
    assert any(s.path.endswith("f23.txt") for s in more.sources[n:])
    assert not any(s.path in {k.path for k in first.sources} for s in more.sources[n:])
    # The first passages stay the system prompt's; the new ones are the follow-up's own, for its turn.
    assert more.in_system == first.text and more.text == first.text + "\n\n" + more.added
    assert same.in_system == first.text and same.added == ""


def test_kept_passages_give_way_when_they_no_longer_fit(library):
    three = Passages(3)  # two distinct ones (f17 and its copy are one): room for one new passage, not both kept
    first = library.context("towns", "How many crates does town 17 store?", count, 4000, passages=three)
    fresh = library.context("towns", "What does the warehouse in town 23 store?", count, count(first.text) - 10,
                            kept=first, passages=three)
    assert len(first.sources) == 2
    assert not fresh.text.startswith(first.text) and fresh.sources[0].n == 1
    assert fresh.in_system == fresh.text and fresh.added == ""  # a fresh start is the system prompt's again


def test_new_passages_are_capped_by_their_token_budget(library):
    capped = library.context("towns", "How many crates does town 17 store?", count, 4000, passages=Passages(5, 150))
    assert 0 < count(capped.text) <= 150 and len(capped.sources) < 5


def test_a_passage_cut_around_its_match_keeps_whole_sentences():
    text = ("Lanterns were lit at dusk. The keeper polished the lens every morning with chalk. "
            "Oil came by boat each month. Storms broke the glass twice.")
    cut = around_match(text, "What did the keeper polish every morning?", 90)
    assert "The keeper polished the lens every morning with chalk." in cut and len(cut) <= 90
    assert around_match(text, "anything", 1000) == text


def test_a_follow_up_on_the_same_passages_reads_only_its_own_tokens(reader, library):
    engine = reader
    engine.library = library
    opts = AskOptions(max_tokens=8, collection="towns", sampling=SamplingSettings(temperature=0),
                      thinking=ThinkingRequest(0))
    first = engine.ask("How many crates does town 17 store?", options=opts)
    follow = engine.ask("Say that again in words.", conversation_id=first.conversation_id, options=opts)
    assert first.sources and "too large" in first.notice
    assert follow.context.startswith(first.context)
    # The kept passages and the first question come from the cache: what is read is the first answer as history
    # replays it (its turn opens without the span the first prompt pre-closed) and the new question.
    assert follow.usage.reused_tokens >= first.usage.prompt_tokens - 16
    assert follow.usage.evaluated_tokens < 0.1 * first.usage.prompt_tokens
    engine.library = None


def test_a_follow_up_that_brings_passages_reads_only_them_and_its_question(reader, library):
    """New passages go in the follow-up's own turn, after the turns before, so the whole first prompt and answer
    come from the cache; a third question is shown them again where they were, before the second question."""
    engine = reader
    engine.library = library
    opts = AskOptions(max_tokens=8, collection="towns", sampling=SamplingSettings(temperature=0),
                      thinking=ThinkingRequest(0))
    library.passages = Passages(k=1)
    try:
        first = engine.ask("How many crates does town 17 store?", options=opts)
        second = engine.ask("And what does the warehouse in town 23 store?", conversation_id=first.conversation_id,
                            options=opts)
        third = engine.ask("Say that again in words.", conversation_id=first.conversation_id, options=opts)
    finally:
        library.passages = Passages()
        engine.library = None
    added = second.context[len(first.context):].strip()
    assert added.startswith("[2] f23.txt") and len(second.sources) == 2
    assert f"{MORE_SOURCES}\n\n{added}\n\nQuestion: And what does" in second.prompt
    assert second.usage.reused_tokens >= first.usage.prompt_tokens - 16  # only the answer replayed, passages, question
    assert third.context == second.context and third.prompt.count(added) == 1
    assert third.prompt.startswith(second.prompt.rsplit(added, 1)[0] + added)
    assert third.usage.evaluated_tokens < 0.1 * third.usage.prompt_tokens


def test_warm_reads_the_fixed_start_and_the_question_reuses_it(reader, library):
    engine = reader
    engine.library = library
    opts = AskOptions(max_tokens=4, collection="towns", sampling=SamplingSettings(temperature=0),
                      thinking=ThinkingRequest(0))
    engine.session.clear()
    warmed = engine.warm(opts)
    assert warmed > 10 and engine.warm(opts) == 0  # read once
    answer = engine.ask("How many crates does town 9 store?", options=opts)
    assert answer.usage.reused_tokens >= warmed - 1
    engine.library = None


def test_a_whole_collection_too_slow_to_read_is_searched_and_the_note_says_why(library):
    whole = library.context("towns", "How many crates does town 17 store?", count, 100_000)
    assert whole.note == "" and len(whole.sources) == 41
    tokens = count(whole.text)
    searched = library.context("towns", "How many crates does town 17 store?", count, 100_000,
                               read_within=(10, tokens / 50))
    assert "would take about 50 s, more than the 10 s set in Preferences" in searched.note
    assert 0 < len(searched.sources) <= 5
    assert library.context("towns", "How many crates?", count, 100_000, read_within=(60, tokens / 50)).note == ""
