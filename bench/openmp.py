"""One token at a time on one thread while another thread that has run a llama.cpp computation lives on (the
window's answering and server threads, the server's batch thread), against the same with no such thread:
engine/openmp.py's reason to exist. Each side runs in a child process, once as Ponder sets libgomp up and once
with libgomp's defaults (GOMP_SPINCOUNT given at its default value, so engine/openmp.py leaves it alone).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading

from bench import core
from bench.runner import Result

ROUNDS = 6  # alone and beside a second thread, taking turns


def _measure(model: str | None) -> dict[str, float]:
    """Median single-sequence tokens/s on this thread, alone and beside a live second computing thread."""
    from engine import Engine, LoadSettings
    from engine.runtime.batch import measure_parallel

    engine = Engine()
    engine.load(model, LoadSettings(n_ctx=1024))
    session = engine.session
    alone, beside = [], []
    measure_parallel(session, (1,), steps=8, rounds=1)  # warm
    for _ in range(ROUNDS):
        alone.append(measure_parallel(session, (1,), steps=32, rounds=1)[1])
        ready, finish = threading.Event(), threading.Event()

        def second() -> None:
            measure_parallel(session, (1,), steps=2, rounds=1)  # its thread now holds an OpenMP team
            ready.set()
            finish.wait()
        thread = threading.Thread(target=second)
        thread.start()
        ready.wait()
        beside.append(measure_parallel(session, (1,), steps=32, rounds=1)[1])
        finish.set()
        thread.join()
    engine.unload()
    return {"alone": statistics.median(alone), "beside": statistics.median(beside)}


def _child(defaults: bool) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if defaults:
        env["GOMP_SPINCOUNT"] = "300000"  # libgomp's own default; its presence keeps engine/openmp.py out
    out = subprocess.run([sys.executable, "-m", "bench.openmp", core.MODEL or ""], env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench_openmp_second_thread() -> list[Result]:
    """Ponder's setting: beside a second thread vs alone (goal: no loss); libgomp's defaults the same way, and
    the two side by side beside a second thread."""
    ours, defaults = _child(False), _child(True)
    return [Result("openmp_second_thread", "tok/s", round(ours["beside"], 1), round(ours["alone"], 1), ">=0.93"),
            Result("openmp_second_thread_defaults", "tok/s", round(defaults["beside"], 1),
                   round(defaults["alone"], 1), ">=0.0"),
            Result("openmp_second_thread_vs_defaults", "tok/s", round(ours["beside"], 1),
                   round(defaults["beside"], 1), ">=1.0")]


if __name__ == "__main__":
    print(json.dumps(_measure(sys.argv[1] or None)))
