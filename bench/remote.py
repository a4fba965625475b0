"""Models from elsewhere: download throughput from a loopback hub against curl of the same file, and decode
speed through the remote engine against the same llama-cpp-python server read directly."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.core import model_path
from bench.hub import Hub, free_port
from bench.runner import Result
from engine.models.download import download, resolve

ROUNDS = 3
STORY = "Write a long story about a lighthouse keeper and the sea."


def bench_download() -> list[Result]:
    """MB/s of `ponder models pull` (resume bookkeeping, sha256 on the fly, fsync before the file is renamed into
    place) vs `curl -o` followed by an fsync of its file, best of 3 each. The fsync is on both sides because a
    pulled model must survive a crash or power cut, and on a busy disk it is most of the time (0.6 of 1.1 s for
    Gemma's 253 MB in one run)."""
    if not shutil.which("curl"):
        print("download: curl not found, skipped", file=sys.stderr)
        return []
    data = model_path().read_bytes()
    ours, theirs = [], []
    with Hub({"bench/model-GGUF/model.gguf": data}) as hub:
        target = resolve("bench/model-GGUF/model.gguf", hub.url)
        for _ in range(ROUNDS):
            with tempfile.TemporaryDirectory() as folder:
                start = time.perf_counter()
                download(target, Path(folder))
                ours.append(len(data) / (time.perf_counter() - start) / 1e6)
                start = time.perf_counter()
                subprocess.run(["curl", "-sS", "-o", str(Path(folder) / "curl.gguf"), target.url], check=True)
                _sync(Path(folder) / "curl.gguf")
                theirs.append(len(data) / (time.perf_counter() - start) / 1e6)
    return [Result("download_throughput", "MB/s", round(max(ours), 1), round(max(theirs), 1), ">=0.80")]


def _sync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _direct_decode(url: str, body: dict) -> float:
    """Tokens/s of the answer read straight from the server's stream (first to last token)."""
    request = urllib.request.Request(url + "/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    stamps = []
    with urllib.request.urlopen(request, timeout=300) as response:
        for raw in response:
            line = raw.decode().strip()
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                delta = json.loads(line[5:])["choices"][0]["delta"]
                if delta.get("content"):
                    stamps.append(time.perf_counter())
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0


def bench_remote_decode() -> list[Result]:
    """Answer tokens/s through RemoteEngine vs the same request read directly, same server and seed."""
    from engine import AskOptions, SamplingSettings
    from engine.chat.history import History
    from engine.remote import RemoteEndpoint, RemoteEngine

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model_path()),
                               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024",
                               "--chat_format", "alpaca"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url + "/models", timeout=2).close()
                break
            except OSError:
                time.sleep(0.3)
        folder = tempfile.mkdtemp(prefix="ponder-bench-")
        engine = RemoteEngine(RemoteEndpoint(url), history=History(Path(folder) / "history.sqlite3"))
        options = AskOptions(max_tokens=128, sampling=SamplingSettings(temperature=0.0, seed=1))
        body = {"model": engine.model, "messages": [{"role": "user", "content": STORY}], "stream": True,
                "max_tokens": 128, "temperature": 0.0, "seed": 1}
        ours, direct = [], []
        for _ in range(ROUNDS):
            ours.append(engine.ask(STORY, options=options).timings.decode_tok_s)
            direct.append(_direct_decode(url, body))
    finally:
        server.terminate()
        server.wait(30)
    return [Result("remote_decode", "tok/s", round(max(ours), 1), round(max(direct), 1), ">=0.95")]
