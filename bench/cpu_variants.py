"""The CPU variant this machine picks against the AVX2 one, decode and prefill through the engine.

The AVX2 variant (`haswell`) is compiled from the same source with the instruction sets of the portable build
(dev.py's PORTABLE_X86_FLAGS), so its figures are the portable build's. ggml loads one CPU variant per process:
each side runs in a child process (`python -m bench.cpu_variants VARIANT [MODEL]`, PONDER_CPU_VARIANT set), the
two alternating ROUNDS times, each child reporting its best of core.REPEATS; a side's figure is its best child.
Needs a set-up with variants (`PONDER_CPU_VARIANTS=1 python3 dev.py setup`); without them it reports nothing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from bench import core
from bench.runner import Result
from engine import AskOptions, PonderError, detect_backend
from engine.runtime import cpu_variants

ROUNDS = 2


def _measure() -> dict:
    """In the child: the engine's best decode and prefill speeds with the variant it was started with."""
    e = core.engine()
    question = "Write a long essay about the history of Rome."
    prefill_only = AskOptions(max_tokens=1, sampling=core.GREEDY)
    decode = prefill = 0.0
    for _ in range(core.REPEATS):
        e.session.clear()
        decode = max(decode, e.ask(question, options=core.RAMBLE).timings.decode_tok_s)
        e.session.clear()
        prefill = max(prefill, e.ask(core.LONG_TEXT, options=prefill_only).timings.prefill_tok_s)
    return {"variant": detect_backend().cpu_variant, "decode": decode, "prefill": prefill}


def _run_child(variant: str) -> dict:
    env = {**os.environ, cpu_variants.FORCE_VARIANT: variant}
    done = subprocess.run([sys.executable, "-m", "bench.cpu_variants", variant, *([core.MODEL] if core.MODEL else [])],
                          env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise PonderError(f"cpu_variants: the {variant} run failed: {done.stderr.strip()[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["variant"] != variant:
        raise PonderError(f"cpu_variants: asked for {variant}, the child ran {report['variant']}")
    return report


def picked_variant() -> str | None:
    """The variant the app loads on this machine (None: a build without variants)."""
    files = cpu_variants.variant_files(cpu_variants.library_folder())
    if not files:
        return None
    return cpu_variants.choose([cpu_variants.Variant(n, p, cpu_variants.score(p)) for n, p in files.items()]).name


def bench_cpu_variants() -> list[Result]:
    picked = picked_variant()
    if picked is None:
        print("cpu_variants: this llama.cpp has no CPU variants (PONDER_CPU_VARIANTS=1 python3 dev.py setup); "
              "nothing to compare", file=sys.stderr)
        return []
    sides = {"picked": [], "avx2": []}
    for _ in range(ROUNDS):
        sides["picked"].append(_run_child(picked))
        sides["avx2"].append(_run_child(cpu_variants.AVX2_VARIANT))
    best = {side: {k: max(r[k] for r in runs) for k in ("decode", "prefill")} for side, runs in sides.items()}
    print(f"cpu_variants: {picked} against {cpu_variants.AVX2_VARIANT} (AVX2): {best}", file=sys.stderr)
    return [Result(f"cpu_{picked}_{k}", "tok/s", round(best["picked"][k], 2), round(best["avx2"][k], 2), ">=0.97")
            for k in ("decode", "prefill")]


if __name__ == "__main__":
    core.MODEL = sys.argv[2] if len(sys.argv) > 2 else None
    print(json.dumps(_measure()))
