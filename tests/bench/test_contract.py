"""`ponder bench --json` keeps its contract (the figures themselves are for people, not assertions)."""
from __future__ import annotations

import json
import os
import subprocess
import sys


def test_bench_json_contract(ponder_home):
    # No model fixture: bench/core.py loads the model itself (Gemma: the contract, not the figure, is tested).
    env = dict(os.environ, PONDER_HOME=str(ponder_home))
    out = subprocess.run([sys.executable, "-m", "app.main", "bench", "--only", "turn2_ttft", "--json",
                          "--model", "gemma-3-270m"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert {"cpu", "threads", "backend", "llama_cpp_python"} <= set(report["machine"])
    (result,) = report["results"]
    assert set(result) == {"name", "unit", "value", "baseline", "ratio", "goal", "met"}
    assert result["name"] == "turn2_ttft" and result["value"] > 0 and result["baseline"] > 0
    assert result["goal"] == "<=1.2" and isinstance(result["met"], bool)


def test_unknown_benchmark_is_a_clear_error(ponder_home):
    env = dict(os.environ, PONDER_HOME=str(ponder_home))
    out = subprocess.run([sys.executable, "-m", "app.main", "bench", "--only", "nope"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "Unknown benchmark nope" in out.stderr


def test_goals_on_the_value_itself():
    from bench.runner import Result

    assert Result("gui_stall_max", "ms", 12.0, 6.0, "value<=50").met
    assert not Result("gui_stall_max", "ms", 60.0, 6.0, "value<=50").met
    assert Result("decode", "tok/s", 58.0, 60.0, ">=0.95").met and not Result("d", "x", 50.0, 60.0, ">=0.95").met


def test_with_json_stdout_is_the_json_alone(monkeypatch, capsys):
    """A benchmark's progress lines go to stderr under --json, whatever it prints."""
    from bench import core, runner

    def noisy():
        print("gui_stall: 400 tokens streamed")
        return [runner.Result("noisy", "ms", 1.0, 1.0, "value<=50")]
    monkeypatch.setattr(runner, "_registry", lambda sweep: {"noisy": noisy})
    monkeypatch.setattr(runner, "machine", lambda: {"cpu": "test"})
    monkeypatch.setattr(core, "MODEL", core.MODEL)  # run_benchmarks sets it; put it back afterwards
    assert runner.run_benchmarks(["noisy"], as_json=True) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["results"][0]["name"] == "noisy" and "400 tokens" in out.err
