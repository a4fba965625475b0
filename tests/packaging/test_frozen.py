"""The installed app as users get it: the PyInstaller bundle built by `python packaging/build.py --bundle-only`,
run headless — the CLI selftest, the GUI selftest, and documents read by the bundled native libraries.

The bundle ships the small gemma-3-270m (which it then uses as its default) rather than the 1.1 GB default model
a release ships: the same code path, a quarter of the bytes to assemble, copy and load."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.rag.documents import write_docx, write_pdf

ROOT = Path(__file__).resolve().parents[2]
EXECUTABLE = ROOT / "dist" / "Ponder" / ("Ponder.exe" if os.name == "nt" else "Ponder")


@pytest.fixture(scope="module")
def bundle() -> Path:
    """Built once per test run (about a minute on 2 cores), from the same environment the tests use."""
    subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), "--bundle-only", "--model", "gemma-3-270m"],
                   check=True, cwd=ROOT, timeout=1800)
    assert EXECUTABLE.exists()
    return EXECUTABLE


def run(bundle: Path, home: Path, *args: str, timeout: int = 600, **extra_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PONDER_CPU_VARIANT"))}
    env.update(PONDER_HOME=str(home), QT_QPA_PLATFORM="offscreen", **extra_env)
    return subprocess.run([str(bundle), *args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=home)


def test_frozen_selftest_answers_with_the_bundled_default_model(bundle, tmp_path):
    done = run(bundle, tmp_path, "selftest", "--json", "--gpu-layers", "0")  # as the release workflow runs it
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["ok"] and report["answer"] and report["model"] == "Gemma 3 270m"


def test_frozen_gui_selftest_streams_into_the_window(bundle, tmp_path):
    done = run(bundle, tmp_path, "selftest", "--gui", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["ok"] and report["shown_in_window"] == report["answer"] and report["streamed_tokens"] >= 1
    assert report["window_s"] > 0
    log = (tmp_path / "logs" / "ponder.log").read_text()  # the windowed app's trace on a stranger's machine
    assert "INFO ponder: Ponder starting" in log and ", frozen" in log
    assert "--- Ponder started, process" in (tmp_path / "logs" / "crash.log").read_text()


def test_frozen_bundle_picks_a_cpu_variant_and_answers_on_the_lowest_one(bundle, tmp_path):
    """Only for a bundle built from a set-up with CPU variants (PONDER_CPU_VARIANTS=1 dev.py setup)."""
    lib = bundle.parent / "_internal" / "llama_cpp" / "lib"
    shipped = sorted(p.name for p in lib.iterdir() if p.name.startswith(("libggml-cpu-", "ggml-cpu-")))
    if not shipped:
        pytest.skip("the bundle's llama.cpp has no CPU variants")
    assert not [name for name in shipped if "sapphirerapids" in name]  # the AMX variant stays out
    picked = json.loads(run(bundle, tmp_path, "selftest", "--json", "--gpu-layers", "0").stdout)
    assert picked["ok"] and any(picked["cpu_variant"] in name for name in shipped)
    done = run(bundle, tmp_path, "selftest", "--json", "--gpu-layers", "0", PONDER_CPU_VARIANT="x64")
    assert done.returncode == 0, done.stderr[-3000:]
    forced = json.loads(done.stdout)
    assert forced["ok"] and forced["answer"] and forced["cpu_variant"] == "x64"


def test_frozen_bundle_carries_no_qt_translations(bundle):
    assert not [p.name for p in bundle.parent.rglob("*.qm")]


def test_frozen_app_reads_pdf_and_docx_and_finds_them(bundle, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "manual.pdf", ["Nothing here.", "The pump must be primed with three litres of water."])
    write_docx(docs / "notes.docx")
    done = run(bundle, tmp_path, "index", str(docs), "--collection", "frozen", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["indexed"] == 2 and not report["skipped"], report
    found = run(bundle, tmp_path, "search", "how much water primes the pump", "--collection", "frozen", "--json")
    assert found.returncode == 0, found.stderr[-3000:]
    hits = json.loads(found.stdout)
    assert Path(hits[0]["path"]).name == "manual.pdf" and hits[0]["page"] == 2
