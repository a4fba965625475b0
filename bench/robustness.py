"""`ponder bench --only robustness`: faults tried on purpose and counted.

- fuzzing: inputs tried per entry point (bench/fuzz.py), crashes and hangs (goal 0), each next to the inputs tried;
- kill -9: trials per scenario (bench/crash.py) and acknowledged records lost (goal 0);
- full disk: trials on a small tmpfs filled to a random level, and how many left a damaged database (goal 0);
- long sessions: resident memory over a long conversation and over indexing 20k chunks, growth after warm-up
  next to the size after warm-up (goal: within 10%).

PONDER_ROBUSTNESS=short runs a small profile (what CI runs); the default is the long one.
"""
from __future__ import annotations

import os
import random
import sqlite3
import sys
import tempfile
from pathlib import Path

import psutil

from bench.runner import Result

PROFILES = {"short": {"fuzz": 30, "kills": 3, "answer_kills": 2, "disk": 3, "turns": 40, "chunks": 2000},
            "long": {"fuzz": 400, "kills": 20, "answer_kills": 8, "disk": 20, "turns": 300, "chunks": 20_000}}


def _profile() -> dict:
    return PROFILES[os.environ.get("PONDER_ROBUSTNESS", "long")]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def bench_fuzz(examples: int) -> list[Result]:
    from bench.fuzz import entries, fuzz

    out = []
    for name in entries():
        r = fuzz(name, examples, seed_value=random.randrange(1 << 30))
        _say(f"fuzz {name}: {r.tried} inputs, {r.crashes} crashes, {r.hangs} hangs, slowest {r.slowest_s:.2f} s"
             + "".join(f"\n  {e}" for e in r.examples[:3]))
        out.append(Result(f"fuzz_{name}_crashes", "of inputs", r.crashes, r.tried, "value<=0"))
        out.append(Result(f"fuzz_{name}_hangs", "of inputs", r.hangs, r.tried, "value<=0"))
    return out


def bench_kill9(kills: int, answer_kills: int) -> list[Result]:
    from bench.crash import SCENARIOS, trials

    out = []
    for scenario in SCENARIOS:
        r = trials(scenario, answer_kills if scenario == "answer" else kills, seed=random.randrange(1 << 30),
                   max_kill_s=15.0 if scenario == "answer" else 3.0)
        _say(f"kill -9 {scenario}: {r.trials} trials, {r.acknowledged} records acknowledged, {r.lost} lost"
             + "".join(f"\n  {p}" for p in r.problems[:3]))
        out.append(Result(f"kill9_{scenario}_lost", f"of {r.trials} trials", r.lost, r.acknowledged, "value<=0"))
    return out


def bench_full_disk(trials: int) -> list[Result]:
    from bench.disk import can_mount, fill, small_disk
    from bench.crash import _index_consistent
    from engine.chat.history import History
    from engine.errors import PonderError
    from engine.rag.index import Indexer
    from engine.rag.store import Store
    from bench.disk import Words, write_docs as _docs

    if not can_mount():
        _say("full disk: cannot mount a tmpfs here (needs root), skipped")
        return []
    corrupted = refused = 0
    with tempfile.TemporaryDirectory() as tmp:
        docs = _docs(Path(tmp) / "docs", 30)
        for _ in range(trials):
            with small_disk(16 << 20) as disk:
                filler = fill(disk, leave_bytes=random.randrange(0, 3_000_000))
                store, history = None, None
                try:
                    store = Store(disk / "index.sqlite3")
                    Indexer(store, Words()).index("docs", [str(docs)], embed=False)
                    history = History(disk / "history.sqlite3")
                    cid = history.create_conversation("full")
                    for _ in range(100):
                        history.add_message(cid, "assistant", "y" * 20_000)
                except PonderError:
                    refused += 1
                finally:
                    for thing in (store, history):
                        if thing is not None:
                            thing.close()
                filler.unlink()
                for db in (disk / "index.sqlite3", disk / "history.sqlite3"):
                    if db.exists():
                        conn = sqlite3.connect(db)
                        bad = conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok"
                        conn.close()
                        corrupted += bad or (db.name == "index.sqlite3" and bool(_index_consistent(db)))
    _say(f"full disk: {trials} trials, {refused} stopped with a message, {corrupted} damaged databases")
    return [Result("full_disk_damaged", f"of {trials} trials", corrupted, trials, "value<=0")]


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


def bench_long_session(turns: int, chunks: int) -> list[Result]:
    from engine import AskOptions, Engine, LoadSettings
    from engine.chat.history import History
    from engine.models.builtin import GEMMA_3_270M, ensure_model
    from engine.rag.index import Indexer
    from engine.rag.store import Store
    from bench.disk import Words

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(history=History(Path(tmp) / "history.sqlite3"))
        engine.load(ensure_model(GEMMA_3_270M), LoadSettings(n_ctx=2048))
        curve, conversation = [], None
        warm = max(1, turns // 6)
        for i in range(turns):
            answer = engine.ask(f"Question {i}: name a colour.", conversation_id=conversation,
                                options=AskOptions(max_tokens=8))
            conversation = answer.conversation_id
            if i % max(1, turns // 12) == 0 or i == turns - 1:
                curve.append((i + 1, round(_rss_mb(), 1)))
        at_warm = next(mb for n, mb in curve if n > warm)
        engine.unload()
        _say("RSS over a conversation (turn, MB): " + ", ".join(f"{n}:{mb}" for n, mb in curve))
        out.append(Result("rss_growth_conversation", "MB", round(curve[-1][1] - at_warm, 1), at_warm, "<=0.10"))
        docs = Path(tmp) / "docs"
        docs.mkdir()
        # Paragraphs of 200 words: two never fit one 256-token chunk and none is long enough to split, so each
        # paragraph is one chunk and `chunks` paragraphs index as `chunks` chunks (the report counts them).
        per_file = 50
        for f in range(chunks // per_file):
            (docs / f"d{f}.md").write_text("\n\n".join(f"p{f}-{j} " + "word " * 199 for j in range(per_file)))
        store = Store(Path(tmp) / "index.sqlite3")
        before = _rss_mb()
        indexer = Indexer(store, Words())
        curve = []

        def progress(p) -> None:
            if p.done % max(1, p.total // 10) == 0:
                curve.append((p.done * per_file, round(_rss_mb(), 1)))
        report = indexer.index("long", [str(docs)], on_progress=progress, embed=False)
        curve.append((report.chunks, round(_rss_mb(), 1)))
        store.close()
        _say(f"RSS indexing {report.chunks} chunks (chunks, MB), from {before:.0f} MB: "
             + ", ".join(f"{n}:{mb}" for n, mb in curve))
        at_warm = curve[min(1, len(curve) - 1)][1]
        out.append(Result("rss_growth_indexing", "MB", round(curve[-1][1] - at_warm, 1), at_warm, "<=0.10"))
    return out


def bench_robustness() -> list[Result]:
    try:
        import hypothesis  # noqa: F401 - a test extra
    except ImportError:
        from engine import PonderError

        raise PonderError("The robustness bench needs the test extras (pip install -e .[test]).") from None
    p = _profile()
    return (bench_fuzz(p["fuzz"]) + bench_kill9(p["kills"], p["answer_kills"]) + bench_full_disk(p["disk"])
            + bench_long_session(p["turns"], p["chunks"]))
