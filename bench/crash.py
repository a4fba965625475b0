"""Crash safety, counted: a child process does real work (an answer, indexing, a download, model imports,
settings saves, collection renames and deletes) and prints an acknowledgement after each record Ponder has told
its caller is saved; the parent kills it with SIGKILL at a random moment, reopens everything and counts the
acknowledged records that are missing or inconsistent. The goal is 0.

    python -m bench.crash child SCENARIO FOLDER [ARG]   (run by `trials`, not by hand)
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SCENARIOS = ("answer", "indexing", "download", "model_import", "settings_save", "collections")
DOC_FILES = 40


@dataclass
class CrashResult:
    scenario: str
    trials: int = 0
    acknowledged: int = 0
    lost: int = 0
    problems: list[str] = field(default_factory=list)


def _ack(*parts) -> None:
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


# -- children: the work, acknowledging each saved record on stdout -----------------------------------------------
def _child_answer(folder: Path, model: str) -> None:
    from engine import AskOptions, Engine, LoadSettings
    from engine.chat.history import History

    engine = Engine(history=History(folder / "history.sqlite3"))
    engine.load(Path(model), LoadSettings(n_ctx=1024))
    _ack("ready")
    from engine import ConversationStarted, Token

    state = {"conversation": None, "asked": False}

    def on_event(event) -> None:
        if isinstance(event, ConversationStarted):
            state["conversation"] = event.conversation_id
        elif isinstance(event, Token) and not state["asked"]:  # the question is stored before the first token
            state["asked"] = True
            _ack("question", state["conversation"], i)
    for i in range(1000):
        state["asked"] = False
        answer = engine.ask(f"Question {i}: name a colour.", conversation_id=state["conversation"],
                            options=AskOptions(max_tokens=12), on_event=on_event)
        _ack("answer", answer.conversation_id, hashlib.sha256(answer.text.encode()).hexdigest()[:16], i)


def _child_indexing(folder: Path, _arg: str) -> None:
    from engine.rag.index import Indexer
    from engine.rag.store import Store

    from bench.disk import Words  # vectors are another transaction per batch, counted in tests/engine/rag

    _ack("ready")
    report = Indexer(Store(folder / "index.sqlite3"), Words()).index("docs", [str(folder / "docs")], embed=False)
    _ack("done", report.indexed)


def _child_download(folder: Path, url: str) -> None:
    from engine.models.download import download, resolve

    _ack("ready")
    path = download(resolve("org/crash-GGUF/model.gguf", url), folder / "models")
    _ack("done", hashlib.sha256(path.read_bytes()).hexdigest())


def _child_model_import(folder: Path, _arg: str) -> None:
    from engine.models.registry import Registry

    registry = Registry(folder / "models.json")
    _ack("ready")
    for i in range(10_000):
        name = folder / "files" / f"m{i % 20}.gguf"
        registry.import_model(name)
        _ack("import", name, i)
        if i % 3 == 2:
            registry.forget(str(name))
            _ack("forget", name, i)


def _child_settings_save(folder: Path, _arg: str) -> None:
    from engine.settings import Settings

    _ack("ready")
    for i in range(1, 1_000_000):
        Settings(n_ctx=i, system_prompt="x" * (i % 5000)).save(folder / "settings.json")
        _ack("saved", i)


def _child_collections(folder: Path, _arg: str) -> None:
    from engine.rag.chunk import Chunk
    from engine.rag.store import Store

    store = Store(folder / "index.sqlite3")
    start = int((folder / "next").read_text()) if (folder / "next").exists() else 0
    _ack("ready")
    for i in range(start, start + 100_000):
        (folder / "next").write_text(str(i + 1))
        cid = store.collection_id(f"c{i}", create=True)
        store.put_file(cid, f"/docs/{i}.md", 1, 1, "x", "", [Chunk(None, 0, 5, f"text {i}")] * 3)
        _ack("created", f"c{i}")
        store.rename(f"c{i}", f"r{i}")
        _ack("renamed", f"c{i}", f"r{i}")
        if i % 2:
            store.remove(f"r{i}")
            _ack("removed", f"r{i}")


# -- checks: what the acknowledgements promise ---------------------------------------------------------------------
def _index_consistent(path: Path) -> list[str]:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name='chunks'").fetchone():
            return []  # killed before the schema was made: an empty index, consistent
        checks = {
            "orphan chunks": "SELECT count(*) FROM chunks WHERE file_id NOT IN (SELECT id FROM files)",
            "orphan files": "SELECT count(*) FROM files WHERE collection_id NOT IN (SELECT id FROM collections)",
            "orphan roots": "SELECT count(*) FROM roots WHERE collection_id NOT IN (SELECT id FROM collections)",
            "duplicate chunks":
                "SELECT count(*) FROM (SELECT file_id, ord FROM chunks GROUP BY 1, 2 HAVING count(*) > 1)",
            "chunks missing from search": "SELECT (SELECT count(*) FROM chunks) - (SELECT count(*) FROM chunks_fts)",
        }
        problems = [f"{n}: {db.execute(q).fetchone()[0]}" for n, q in checks.items() if db.execute(q).fetchone()[0]]
        if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            problems.append("integrity_check failed")
        return problems
    finally:
        db.close()


def _check(scenario: str, folder: Path, acks: list[list[str]], setup: dict) -> tuple[int, int, list[str]]:
    """(acknowledged records, lost or inconsistent, what was wrong)."""
    if scenario == "answer":
        from engine.chat.history import History

        history = History(folder / "history.sqlite3")
        done = [a for a in acks if a[0] == "answer"]
        asked = [a for a in acks if a[0] == "question"]
        messages = [m for c in history.conversations() for m in history.messages(c.id)]
        history.close()
        found = {(str(m.conversation_id), hashlib.sha256(m.content.encode()).hexdigest()[:16])
                 for m in messages if m.role == "assistant" and m.state == "complete"}
        questions = {(str(m.conversation_id), m.content.split(":")[0].split(" ")[-1]) for m in messages
                     if m.role == "user"}
        unfinished = [m for m in messages if m.state == "streaming"]  # reopening must have marked them partial
        lost = [f"answer {a[3]} lost" for a in done if (a[1], a[2]) not in found]
        lost += [f"question {a[2]} lost" for a in asked if (a[1], a[2]) not in questions]
        lost += [f"{len(unfinished)} answers left streaming"] * bool(unfinished)
        return len(done) + len(asked), len(lost), lost
    if scenario == "indexing":
        problems = _index_consistent(folder / "index.sqlite3") if (folder / "index.sqlite3").exists() else []
        resumed = subprocess.run([sys.executable, "-m", "bench.crash", "child", "indexing", str(folder)],
                                 capture_output=True, text=True, timeout=300)
        indexed = _index_count(folder / "index.sqlite3")
        lost = DOC_FILES - indexed
        problems += [f"{lost} files missing after resuming"] * bool(lost) + \
            [f"resume failed: {resumed.stderr[-300:]}"] * bool(resumed.returncode)
        return DOC_FILES, lost + len(problems) - bool(lost), problems
    if scenario == "download":
        from engine.models.download import download, resolve

        try:
            final = folder / "models" / "model.gguf"  # killed after the rename: complete, checked by its sha256
            path = final if final.exists() else download(resolve("org/crash-GGUF/model.gguf", setup["url"]),
                                                         folder / "models")
            ok = hashlib.sha256(path.read_bytes()).hexdigest() == setup["sha256"]
        except Exception as e:  # noqa: BLE001 - any failure to resume is a lost record here
            return 1, 1, [f"resume failed: {e}"]
        return 1, int(not ok), [] if ok else ["the resumed file differs"]
    if scenario == "model_import":
        from engine.settings import read_json

        data = read_json(folder / "models.json", None)
        if not isinstance(data, dict):
            return len(acks), len(acks) or 1, ["models.json unreadable"]
        state: dict[str, bool] = {}
        for a in acks:
            if a[0] in ("import", "forget"):
                state[a[1]] = a[0] == "import"
        # The kill can come after a forget was written and before it was acknowledged: the model acknowledged last
        # as imported may then be gone, rightly (the child forgets after every third import).
        last = next((a for a in reversed(acks) if a[0] in ("import", "forget")), None)
        in_flight = last[1] if last and last[0] == "import" and int(last[2]) % 3 == 2 else None
        imported = set(data.get("imported", []))
        wrong = [p for p, present in state.items() if present and p not in imported and p != in_flight]
        return len(acks) - 1, len(wrong), [f"{p} not listed" for p in wrong]
    if scenario == "settings_save":
        from engine.settings import Settings

        saved = [int(a[1]) for a in acks if a[0] == "saved"]
        damaged = [p for p in folder.iterdir() if "damaged" in p.name]
        litter = [p for p in folder.iterdir() if p.suffix == ".tmp"]  # a save cut short: never read, not a loss
        for p in litter:
            p.unlink()
        n = Settings.load(folder / "settings.json").n_ctx
        last = saved[-1] if saved else 0
        ok = n in (last, last + 1) or (not saved and n in (Settings().n_ctx, 1))
        return len(saved), int(not ok) + len(damaged), [f"n_ctx {n}, last saved {last}"] * (not ok) + \
            [f"damaged: {p.name}" for p in damaged] + [f"temp file left by the kill: {p.name}" for p in litter]
    if scenario == "collections":
        from engine.rag.store import Store

        problems = _index_consistent(folder / "index.sqlite3")
        store = Store(folder / "index.sqlite3")
        names = {c.name for c in store.collections()}
        store.close()
        expected: dict[str, bool] = {}
        for a in acks:
            if a[0] == "created":
                expected[a[1]] = True
            elif a[0] == "renamed":
                expected[a[1]], expected[a[2]] = False, True
            elif a[0] == "removed":
                expected[a[1]] = False
        # The kill can come after the step following the last acknowledgement was committed and before it was
        # acknowledged: a collection acknowledged as created may already be renamed, one acknowledged as renamed
        # (odd numbers) already removed. Either state of that one step is right.
        done = dict(expected)
        last = acks[-1] if len(acks) > 1 else ("ready",)
        if last[0] == "created":
            done[last[1]], done["r" + last[1][1:]] = False, True
        elif last[0] == "renamed" and int(last[1][1:]) % 2:
            done[last[2]] = False
        wrong = min(([n for n, present in states.items() if present != (n in names)] for states in (expected, done)),
                    key=len)
        return len(acks) - 1, len(wrong) + len(problems), [f"{n} wrong" for n in wrong] + problems
    raise ValueError(scenario)


def _index_count(path: Path) -> int:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT count(*) FROM files WHERE skipped=''").fetchone()[0]
    finally:
        db.close()


# -- the parent: set up, start, kill, check ------------------------------------------------------------------------
def _setup(scenario: str, folder: Path, rng: random.Random) -> tuple[str, dict]:
    if scenario == "answer":
        from engine.models.builtin import GEMMA_3_270M, ensure_model

        return str(ensure_model(GEMMA_3_270M)), {}
    if scenario == "indexing":
        docs = folder / "docs"
        docs.mkdir(parents=True, exist_ok=True)
        for i in range(DOC_FILES):
            words = " ".join(f"w{(i * 7 + j) % 997}" for j in range(600))
            (docs / f"d{i:03d}.md").write_text("\n\n".join(words[k:k + 400] for k in range(0, len(words), 400)))
        return "", {}
    if scenario == "download":
        return "", {}
    if scenario == "model_import":
        from bench.synthetic import write_tiny_model

        files = folder / "files"
        files.mkdir(parents=True, exist_ok=True)
        first = write_tiny_model(files / "m0.gguf")
        for i in range(1, 20):
            (files / f"m{i}.gguf").write_bytes(first.read_bytes())
        return "", {}
    return "", {}


def trials(scenario: str, count: int, seed: int = 0, max_kill_s: float = 3.0) -> CrashResult:
    """`count` runs of `scenario`, each killed with SIGKILL at a random moment after it is ready."""
    import tempfile

    rng = random.Random(seed)
    result = CrashResult(scenario)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        arg, setup = _setup(scenario, folder, rng)
        hub = None
        if scenario == "download":
            from bench.hub import Hub

            data = os.urandom(24 << 20)
            hub = Hub({"org/crash-GGUF/model.gguf": data}).__enter__()
            hub.chunk_delay = 0.002
            arg, setup = hub.url, {"url": hub.url, "sha256": hashlib.sha256(data).hexdigest()}
        try:
            for _ in range(count):
                if scenario in ("download", "indexing", "settings_save"):  # each trial starts from nothing
                    for leftover in (folder / "models", folder / "index.sqlite3", folder / "settings.json"):
                        _remove(leftover)
                result.trials += 1
                acks = _run_and_kill(scenario, folder, arg, rng.uniform(0.05, max_kill_s))
                acknowledged, lost, problems = _check(scenario, folder, acks, setup)
                result.acknowledged += acknowledged
                result.lost += lost
                result.problems += problems
        finally:
            if hub is not None:
                hub.__exit__(None, None, None)
    return result


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path)
    for p in (path, Path(str(path) + "-wal"), Path(str(path) + "-shm")):
        if p.is_file():
            p.unlink()


def _run_and_kill(scenario: str, folder: Path, arg: str, after_s: float) -> list[list[str]]:
    env = dict(os.environ, PONDER_HOME=str(folder / "home"), PYTHONUNBUFFERED="1")
    child = subprocess.Popen([sys.executable, "-m", "bench.crash", "child", scenario, str(folder), arg],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    lines = [child.stdout.readline()]  # "ready": the kill clock starts once the work does
    deadline = time.monotonic() + after_s
    os.set_blocking(child.stdout.fileno(), False)
    while time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    os.set_blocking(child.stdout.fileno(), True)
    rest = child.stdout.read()
    child.stdout.close()
    text = "".join(lines) + rest
    # only whole lines count: a line cut by the kill was never acknowledged
    return [line.split(" ") for line in text.split("\n")[:-1] if line]


def main(argv: list[str]) -> int:
    if argv[:1] == ["child"]:
        scenario, folder = argv[1], Path(argv[2])
        arg = argv[3] if len(argv) > 3 else ""
        globals()[f"_child_{scenario}"](folder, arg)
        return 0
    count = 5
    if argv[:1] == ["-n"]:
        count, argv = int(argv[1]), argv[2:]
    for scenario in argv or SCENARIOS:
        r = trials(scenario, count, seed=random.randrange(1 << 30))
        print(f"{scenario}: {r.trials} trials, {r.acknowledged} acknowledged, {r.lost} lost {r.problems[:3]}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
