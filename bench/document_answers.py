"""Answers from documents: how long the first token takes (documents_ttft, followup_ttft, documents_ttft_typed) and
how many passage tokens right answers need (documents_budget), on the document eval's questions
(bench/retrieval_eval.py).

Every question is a new conversation, greedy, thinking Off (the answer follows "Final answer:"), on the model
`ponder bench --model` names (the default chat model unless told) with the app's 4,096-token context.
`--split tuning` (the default) asks the Libtasn1 questions, the set the passage budget was chosen on;
`--split heldout` the eval set's, which report the figures; `--limit N` the first N.
"""
from __future__ import annotations

import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import llama_cpp

from bench import core, retrieval_eval
from bench.documents import embedder
from bench.runner import Result
from engine import AskOptions, Engine, History, LoadSettings, SamplingSettings, ThinkingRequest
from engine.rag.library import PASSAGES, Library, Passages
from engine.runtime.backend import default_threads

N_CTX = 4096  # the app's context
COLLECTION = "eval"
OFF = AskOptions(max_tokens=64, sampling=SamplingSettings(temperature=0, repeat_penalty=1.0),
                 thinking=ThinkingRequest(0), collection=COLLECTION)
FOLLOW_UP = "Quote the sentence of the sources that says so."
TYPING_WPM = 40  # documents_ttft_typed: how fast the question is typed while its draft is read ahead
SPLIT = "tuning"  # set by the runner from --split
LIMIT: int | None = None  # set by the runner from --limit


BEFORE = Passages(5, None, None)  # as Ponder chose them before: the 5 best, whole, as many as the context holds
NOW = PASSAGES
SETTINGS = (BEFORE, Passages(1), Passages(2), Passages(3), Passages(5, 900), Passages(5, 600), Passages(5, 400),
            Passages(5, 250), Passages(5, None, 600), Passages(5, None, 400), Passages(5, 600, 600),
            Passages(3, None, 600), Passages(8, 600, 400))


def _name(p: Passages) -> str:
    return f"k{p.k}" + (f"_max{p.tokens}" if p.tokens else "") + (f"_cut{p.trim_chars}" if p.trim_chars else "")


def questions() -> list[tuple[str, str, int | None]]:
    qs = list(retrieval_eval.TUNING_QUESTIONS if SPLIT == "tuning" else retrieval_eval.QUESTIONS)
    return qs[:LIMIT] if LIMIT else qs


@functools.cache
def engine() -> Engine:
    e = Engine(history=History(Path(tempfile.mkdtemp(prefix="ponder-bench-")) / "history.sqlite3"))
    e.load(core.MODEL, LoadSettings(n_ctx=N_CTX))
    e.library = _library()
    return e


@functools.cache
def _library() -> Library:
    """The split's documents, with the other split's as distractors, indexed once."""
    library = Library(Path(tempfile.mkdtemp(prefix="ponder-bench-")) / "index.sqlite3", embedder())
    library.index(COLLECTION, [str(p) for p in retrieval_eval.corpus_paths() + retrieval_eval.tuning_paths()])
    return library


@functools.cache
def raw_llama() -> llama_cpp.Llama:
    threads = default_threads()
    return llama_cpp.Llama(str(engine().model_path), n_ctx=N_CTX, n_batch=512, n_threads=threads,
                           n_threads_batch=threads, n_gpu_layers=0 if not engine().backend.gpu_offload else -1,
                           swa_full=True, flash_attn=True, verbose=False)


def _ask(question: str, setting: Passages, conversation_id: int | None = None):
    e = engine()
    e.library.passages = setting
    return e.ask(question, conversation_id=conversation_id, options=OFF)


def _fresh(warm: bool) -> int:
    """An empty cache, then (as the app does after loading) the document prompt's fixed start read."""
    e = engine()
    e.session.clear()
    return e.warm(OFF) if warm else 0


def _raw_ttft(prompt: list[int], reused: int) -> float:
    """raw llama-cpp-python: the same prompt, the same first `reused` tokens already in its cache."""
    llm = raw_llama()
    llm.reset()
    if reused:
        llm.eval(prompt[:reused])
    start = time.perf_counter()
    llm.eval(prompt[reused:])
    llm.sample(temp=0.0, repeat_penalty=1.0)
    return time.perf_counter() - start


def _p90(xs: list[float]) -> float:
    return sorted(xs)[min(len(xs) - 1, round(0.9 * (len(xs) - 1)))]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def bench_documents_ttft() -> list[Result]:
    """Median and p90 time to first token, now (the fixed start read after loading, as the app does) against raw
    llama-cpp-python reading the same prompts from the same cached start (the floor), and against how it was
    before (an empty cache, 5 whole passages); correctness and prompt tokens beside."""
    now, raw, before = [], [], []
    right_now = right_before = 0
    tokens_now, tokens_before = [], []
    for i, (q, _suffix, _page) in enumerate(questions()):
        _fresh(warm=True)
        a = _ask(q, NOW)
        prompt = engine().history.messages(a.conversation_id)[-1].meta["prompt"]
        tokens = engine().session.tokenize(prompt, add_bos=engine().session.adds_bos)
        raw.append(_raw_ttft(tokens, a.usage.reused_tokens))
        now.append(a.timings.ttft_s)
        right_now += retrieval_eval.answer_is_right(q, a.text)
        tokens_now.append(a.usage.prompt_tokens)
        _fresh(warm=False)  # before: nothing read ahead, 5 whole passages
        b = _ask(q, BEFORE)
        before.append(b.timings.ttft_s)
        right_before += retrieval_eval.answer_is_right(q, b.text)
        tokens_before.append(b.usage.prompt_tokens)
        _say(f"  {i + 1}: now {a.timings.ttft_s:.1f} s ({a.usage.evaluated_tokens} read, {a.usage.reused_tokens} "
             f"reused) {'right' if retrieval_eval.answer_is_right(q, a.text) else 'wrong'} | raw {raw[-1]:.1f} s | "
             f"before {b.timings.ttft_s:.1f} s ({b.usage.evaluated_tokens} read) "
             f"{'right' if retrieval_eval.answer_is_right(q, b.text) else 'wrong'} | {a.text[:60]!r}")
    n = len(now)
    return [
        Result("documents_ttft_median", "s", round(statistics.median(now), 2), round(statistics.median(raw), 2),
               "<=1.1"),
        Result("documents_ttft_p90", "s", round(_p90(now), 2), round(_p90(raw), 2), "<=1.1"),
        Result("documents_ttft_median_vs_before", "s", round(statistics.median(now), 2),
               round(statistics.median(before), 2), "<=1.0"),
        Result("documents_ttft_median_goal", "s", round(statistics.median(now), 2), 8.0, "value<=8"),
        Result("documents_correct", "fraction", round(right_now / n, 3), round(right_before / n, 3), ">=1.0"),
        Result("documents_prompt_tokens", "tokens", round(statistics.mean(tokens_now), 1),
               round(statistics.mean(tokens_before), 1), "<=1.0"),
    ]


def bench_followup_ttft() -> list[Result]:
    """A follow-up on the same passages against the first question's time to first token."""
    first, follow = [], []
    for i, (q, _suffix, _page) in enumerate(questions()):
        _fresh(warm=True)
        a = _ask(q, NOW)
        b = _ask(FOLLOW_UP, NOW, a.conversation_id)
        first.append(a.timings.ttft_s)
        follow.append(b.timings.ttft_s)
        _say(f"  {i + 1}: first {a.timings.ttft_s:.1f} s ({a.usage.evaluated_tokens} read), follow-up "
             f"{b.timings.ttft_s:.1f} s ({b.usage.evaluated_tokens} read, {b.usage.reused_tokens} reused; "
             f"{len(b.sources) - len(a.sources)} passages added) {b.text[:70]!r}")
    return [Result("followup_ttft", "s", round(statistics.median(follow), 2), round(statistics.median(first), 2),
                   "<=0.3")]


def _typed(question: str):
    """The question typed at TYPING_WPM while its draft (the question without its last word) is read ahead, then
    asked: the read-ahead, and the answer."""
    e = engine()
    typing_s = len(question.split()) * 60 / TYPING_WPM
    draft = question.rsplit(None, 1)[0]
    start = time.perf_counter()
    read = e.read_ahead(draft, options=OFF, is_cancelled=lambda: time.perf_counter() - start > typing_s)
    return read, _ask(question, NOW)


def bench_documents_ttft_typed() -> list[Result]:
    """Time to first token when the question's sources were read while it was typed (Engine.read_ahead, as the
    app does once typing pauses), against the same question asked cold in the same run (the fixed start read after
    loading, nothing else); how often the draft's passages were the question's, and whether the answers agree."""
    cold, typed = [], []
    matched = same = same_prompt = 0
    for i, (q, _suffix, _page) in enumerate(questions()):
        _fresh(warm=True)
        a = _ask(q, NOW)
        _fresh(warm=True)
        read, b = _typed(q)
        cold.append(a.timings.ttft_s)
        typed.append(b.timings.ttft_s)
        matched += read.context == b.context
        same += a.text == b.text
        same_prompt += a.prompt == b.prompt
        _say(f"  {i + 1}: cold {a.timings.ttft_s:.1f} s ({a.usage.evaluated_tokens} read) | typed "
             f"{b.timings.ttft_s:.1f} s ({b.usage.evaluated_tokens} read; {read.evaluated} of {read.start} read "
             f"ahead{', stopped' if read.stopped else ''}) | passages "
             f"{'same' if read.context == b.context else 'other'} | prompts "
             f"{'same' if a.prompt == b.prompt else 'DIFFER'} | answers {'same' if a.text == b.text else 'DIFFER'}")
    n = len(typed)
    return [
        Result("documents_ttft_typed_median", "s", round(statistics.median(typed), 2),
               round(statistics.median(cold), 2), "<=1.0"),
        Result("documents_ttft_typed_p90", "s", round(_p90(typed), 2), round(_p90(cold), 2), "<=1.0"),
        Result("documents_ttft_typed_goal", "s", round(statistics.median(typed), 2), 8.0, "value<=8"),
        Result("read_ahead_passages_match", "fraction", round(matched / n, 3), 1.0, ">=0"),
        Result("read_ahead_same_prompt", "fraction", round(same_prompt / n, 3), 1.0, ">=1.0"),
        Result("read_ahead_same_answer", "fraction", round(same / n, 3), 1.0, ">=1.0"),
    ]


def bench_documents_budget() -> list[Result]:
    """For each way of choosing passages: how often what is sent holds the answer (its patterns all appear in
    the passages; no model needed) and the passage tokens, against 5 whole passages. With `--limit`, the model
    also answers, for correctness per setting (slow: a question takes the 1.5B 10-30 s on 2 cores)."""
    e = engine()
    count = lambda text: len(e.session.tokenize(text))
    rows = []
    base = None
    for setting in SETTINGS:
        held = tokens = right = 0
        for q, _suffix, _page in questions():
            ctx = e.library.context(COLLECTION, q, count, N_CTX, passages=setting)
            held += retrieval_eval.answer_is_right(q, ctx.text)
            tokens += count(ctx.text)
            if LIMIT:
                _fresh(warm=True)
                right += retrieval_eval.answer_is_right(q, _ask(q, setting).text)
        n = len(questions())
        base = base or (held / n, tokens / n, right / n)
        _say(f"  {_name(setting):22} answer in passages {held / n:.3f}  passage tokens {tokens / n:7.1f}"
             + (f"  answers right {right / n:.3f}" if LIMIT else ""))
        slug = _name(setting)
        rows.append(Result(f"passages_hold_answer[{slug}]", "fraction", round(held / n, 3), round(base[0], 3),
                           ">=0"))
        rows.append(Result(f"passage_tokens[{slug}]", "tokens", round(tokens / n, 1), round(base[1], 1), ">=0"))
        if LIMIT:
            rows.append(Result(f"answers_right[{slug}]", "fraction", round(right / n, 3), round(base[2], 3), ">=0"))
    return rows
