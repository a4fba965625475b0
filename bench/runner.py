"""`ponder bench`: every figure next to a baseline measured in the same run, as a ratio.

Contract (later benchmarks add entries): with --json, one object
{"machine": {...}, "results": [{"name", "unit", "value", "baseline", "ratio", "goal", "met"}]}.
`goal` is a string such as ">=0.97" that applies to `ratio`, or to `value` itself when it starts with "value"
(e.g. "value<=50" for the GUI's longest stall in ms, a limit a person feels whatever the machine).
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from typing import Callable

from bench.sweep import SweepOptions, bench_budget_sweep
from engine import PonderError, detect_backend
from engine.runtime.backend import default_threads


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    unit: str
    value: float
    baseline: float
    goal: str  # applies to ratio = value / baseline; "value<=50" applies to the value itself

    @property
    def ratio(self) -> float:
        return round(self.value / self.baseline, 3) if self.baseline else 0.0

    @property
    def met(self) -> bool:
        goal, measured = (self.goal[5:], self.value) if self.goal.startswith("value") else (self.goal, self.ratio)
        op, target = goal[:2], float(goal[2:])
        return measured >= target if op == ">=" else measured <= target

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


def machine() -> dict:
    backend = detect_backend()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "threads": default_threads(), "backend": backend.name,
            "devices": list(backend.devices), "python": platform.python_version(),
            "llama_cpp_python": metadata.version("llama-cpp-python"), "os": platform.platform()}


def _registry(sweep: SweepOptions) -> dict[str, Callable[[], list[Result]]]:
    from bench import (budget, core, cpu_variants, document_answers, documents, gui, openmp, remote, robustness,
                       serve, speculative)

    document_answers.SPLIT, document_answers.LIMIT = sweep.split, sweep.limit

    return {"decode": core.bench_decode, "prefill": core.bench_prefill, "turn2_ttft": core.bench_turn2_ttft,
            "cpu_variants": cpu_variants.bench_cpu_variants, "openmp_second_thread": openmp.bench_openmp_second_thread,
            "budget_overhead": budget.bench_budget_overhead, "budget_overshoot": budget.bench_budget_overshoot,
            "budget_close_cost": budget.bench_budget_close_cost,
            "budget_sweep": functools.partial(bench_budget_sweep, sweep),
            "index_throughput": documents.bench_index_throughput, "search_latency": documents.bench_search_latency,
            "retrieval_quality": documents.bench_retrieval_quality,
            "documents_ttft": document_answers.bench_documents_ttft,
            "followup_ttft": document_answers.bench_followup_ttft,
            "documents_ttft_typed": document_answers.bench_documents_ttft_typed,
            "documents_budget": document_answers.bench_documents_budget, "gui_stall": gui.bench_gui_stall,
            "download": remote.bench_download, "remote_decode": remote.bench_remote_decode,
            "verify_cost": speculative.bench_verify_cost, "spec_documents": speculative.bench_spec_documents,
            "spec_prose": speculative.bench_spec_prose, "spec_draft": speculative.bench_spec_draft,
            "serve_batch4": serve.bench_serve_batch4, "serve_vs_llama_server": serve.bench_serve_vs_llama_server,
            "serve_vs_llama_cpp_python": serve.bench_serve_vs_llama_cpp_python,
            "serve_ttft_p95_under_load": serve.bench_serve_ttft_p95_under_load,
            "robustness": robustness.bench_robustness}


def run_benchmarks(only: list[str] | None = None, as_json: bool = False, sweep: SweepOptions | None = None) -> int:
    """Run the chosen benchmarks (all when `only` is None); `sweep` configures budget_sweep."""
    sweep = sweep or SweepOptions()
    from bench import core

    core.MODEL = sweep.model  # one --model for every bench that loads a model
    if as_json:
        sweep = replace(sweep, out=sys.stderr)  # stdout carries the JSON alone
    benches = _registry(sweep)
    unknown = [n for n in (only or []) if n not in benches]
    if unknown:
        raise PonderError(f"Unknown benchmark {', '.join(unknown)}; choose from: {', '.join(benches)}.")
    results: list[Result] = []
    info = machine()
    if not as_json:
        print(f"machine: {info['cpu']}, {info['threads']} threads, backend {info['backend']}, "
              f"llama-cpp-python {info['llama_cpp_python']}", flush=True)
    for name, bench in benches.items():
        if only and name not in only:
            continue
        print(f"running {name}…", file=sys.stderr, flush=True)
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            measured = bench()  # whatever a benchmark prints is progress: with --json, stdout is the JSON alone
        for r in measured:
            results.append(r)
            if not as_json:
                print(f"{r.name:36} {r.value:10.3f} {r.unit:12} baseline {r.baseline:10.3f}  ratio {r.ratio:6.3f}  "
                      f"goal {r.goal:12} {'met' if r.met else 'NOT MET'}", flush=True)
    if as_json:
        print(json.dumps({"machine": info, "results": [r.as_dict() for r in results]}, indent=2))
    return 0
