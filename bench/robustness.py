"""`ponder bench --only robustness`: faults tried on purpose and counted.

- fuzzing: inputs tried per entry point (bench/fuzz.py), crashes and hangs (goal 0), each next to the inputs tried;
- kill -9: trials per scenario (bench/crash.py) and acknowledged records lost (goal 0);
- full disk: trials on a small tmpfs filled to a random level, and how many left a damaged database (goal 0);
- long sessions: resident memory over a long conversation and over indexing 20k chunks, growth after warm-up
  next to the size after warm-up (goal: within 10%).
- the local server: malformed, mutated and oversized requests, slow senders and too many connections, each
  answer not a 4xx with OpenAI's error body counted (goal 0), and resident memory over rounds of bad bodies.

PONDER_ROBUSTNESS=short runs a small profile (what CI runs); the default is the long one.
"""
from __future__ import annotations

import os
import random
import socket
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


def bench_server(examples: int) -> list[Result]:
    """`ponder serve` on Gemma 3 270M against the bad clients of bench/bad_clients.py: each malformed request, then
    `examples` mutated ones, slow senders and a flood of connections; every answer must be a 4xx with OpenAI's
    error body (a mutated request that is still valid may be answered), and the server must answer a good request
    after. Memory: resident size over rounds of 1 MiB bad bodies, growth after the first round."""
    import json
    import threading

    from bench.bad_clients import BAD_REQUESTS, CHAT, GOOD, exchange, mutated, post
    from engine import ApiServer, ModelService, ServeSettings
    from engine.models.builtin import GEMMA_3_270M, ensure_model
    from engine.server import Limits

    service = ModelService(ServeSettings(model=str(ensure_model(GEMMA_3_270M)), parallel=1, n_ctx=512))
    server = ApiServer(service, "127.0.0.1", 0, limits=Limits(connections=8, request_s=2.0)).start()
    address, problems, tried, lock = server.server_address[:2], [], [0], threading.Lock()

    def check(name: str, answer, allowed=range(400, 500)) -> None:
        status, body = answer
        with lock:
            tried[0] += 1
            if status not in allowed or status != 200 and not ((body or {}).get("error") or {}).get("message"):
                problems.append(f"{name}: {status} {str(body)[:120]}")
    try:
        rng = random.Random(random.randrange(1 << 30))
        for name, data, _status, _code in BAD_REQUESTS:
            check(name, exchange(address, data))
        for i in range(examples):
            check(f"mutated #{i}", exchange(address, mutated(rng)), [200, *range(400, 500)])
        _server_crowd(server, check)
        curve = _server_rss(address, post(CHAT, b"[" + b"0," * (2**19 - 2) + b"0]"), check)
        check("a good request after all that", exchange(address, post(CHAT, json.dumps(GOOD).encode())), [200])
    finally:
        server.stop()
        service.close()
    _say(f"server: {tried[0]} bad requests and clients, {len(problems)} not answered with a 4xx"
         + "".join(f"\n  {p}" for p in problems[:5]) + f"\nRSS over rounds of 8 bad 1 MiB bodies (MB): {curve}")
    warm = curve[len(curve) // 3]  # glibc's per-thread malloc arenas fill over the first rounds, then RSS is flat
    return [Result("server_bad_requests_not_4xx", "of requests", len(problems), tried[0], "value<=0"),
            Result("rss_growth_server", "MB", round(curve[-1] - warm, 1), warm, "<=0.10")]


def _server_crowd(server, check) -> None:
    """Slow senders and idle connections fill the server: those over the limit get 429, the slow ones 408."""
    import threading
    import time

    from bench.bad_clients import exchange, slow_sender

    address = server.server_address[:2]
    head = b"GET /health HTTP/1.1\r\nX-Slow: " + b"z" * 100 + b"\r\n\r\n"
    senders = [threading.Thread(target=lambda: check("slow sender", slow_sender(address, head, 0.5)[0], [408]))
               for _ in range(3)]
    for t in senders:
        t.start()
    held = [socket.create_connection(address, timeout=60) for _ in range(server.limits.connections - len(senders))]
    deadline = time.monotonic() + 10
    while server.connections < server.limits.connections and time.monotonic() < deadline:
        time.sleep(0.02)
    for i in range(4):
        check(f"connection over the limit #{i}", exchange(address, b"GET /health HTTP/1.1\r\n\r\n"), [429])
    for t in senders:
        t.join(120)
    for s in held:
        s.close()


def _server_rss(address, data: bytes, check, rounds: int = 30) -> list[float]:
    """Resident MB after each round of 8 concurrent bad requests carrying `data`."""
    import threading

    from bench.bad_clients import exchange

    curve = []
    for _ in range(rounds):
        batch = [threading.Thread(target=lambda: check("1 MiB body", exchange(address, data))) for _ in range(8)]
        for t in batch:
            t.start()
        for t in batch:
            t.join(120)
        curve.append(round(_rss_mb(), 1))
    return curve


def bench_robustness() -> list[Result]:
    try:
        import hypothesis  # noqa: F401 - a test extra
    except ImportError:
        from engine import PonderError

        raise PonderError("The robustness bench needs the test extras (pip install -e .[test]).") from None
    p = _profile()
    return (bench_fuzz(p["fuzz"]) + bench_kill9(p["kills"], p["answer_kills"]) + bench_full_disk(p["disk"])
            + bench_long_session(p["turns"], p["chunks"]) + bench_server(p["fuzz"]))
