"""Choosing llama.cpp's CPU variant: by score, never the AMX one, forced by PONDER_CPU_VARIANT; and, with a set-up
built with variants (PONDER_CPU_VARIANTS=1), a model answering on the picked one and on the lowest one forced."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import ModelError
from engine.runtime import cpu_variants
from engine.runtime.cpu_variants import Variant, choose

ROOT = Path(__file__).resolve().parents[3]


def variants(**scores: int) -> list[Variant]:
    return [Variant(name, Path(f"/lib/libggml-cpu-{name}.so"), score) for name, score in scores.items()]


# The scores ggml's x86 variants give on an AVX2-only CPU (haswell the best) and on a Sapphire Rapids Xeon.
AVX2_ONLY = variants(x64=1, sse42=3, sandybridge=7, haswell=127, skylakex=0, zen4=0, sapphirerapids=0)
XEON_AMX = variants(x64=1, haswell=127, skylakex=255, icelake=1535, zen4=2047, sapphirerapids=16383)


def test_the_best_score_this_cpu_can_run_is_chosen():
    assert choose(AVX2_ONLY).name == "haswell"
    assert choose(variants(x64=1, sse42=3)).name == "sse42"  # a PC without AVX runs SSE4.2 code, not nothing


def test_the_amx_variant_is_never_chosen_by_score():
    """The AMX kernels segfaulted in ggml_backend_amx_mul_mat on the Xeon development machines."""
    assert cpu_variants.NEVER_PICKED == ("sapphirerapids",)
    assert choose(XEON_AMX).name == "zen4"


def test_a_forced_variant_is_loaded_even_when_a_better_one_exists():
    assert choose(XEON_AMX, forced="x64").name == "x64"
    assert choose(XEON_AMX, forced="sapphirerapids").name == "sapphirerapids"  # to test AMX on purpose


def test_forcing_a_variant_the_build_lacks_or_the_cpu_cannot_run_is_a_sentence():
    with pytest.raises(ModelError, match="PONDER_CPU_VARIANT=avx10 names no CPU variant of this build; it has x64"):
        choose(AVX2_ONLY, forced="avx10")
    with pytest.raises(ModelError, match="zen4: this processor lacks instructions .* run x64, sse42, sandybridge, "
                                         "haswell"):
        choose(AVX2_ONLY, forced="zen4")
    with pytest.raises(ModelError, match="None of llama.cpp's CPU variants runs on this processor"):
        choose(variants(skylakex=0, sapphirerapids=5))


def test_variant_and_backend_libraries_are_told_apart(tmp_path):
    suffix, prefix = cpu_variants.SUFFIX, cpu_variants.PREFIX
    base = prefix.replace("cpu-", "")
    for name in (f"{prefix}haswell{suffix}", f"{prefix}x64{suffix}", f"{base}cuda{suffix}", f"{base}base{suffix}",
                 f"{base}cpu{suffix}", f"{base}base{suffix}.0", "libllama.so"):
        (tmp_path / name).write_bytes(b"")
    assert list(cpu_variants.variant_files(tmp_path)) == ["haswell", "x64"]
    assert [p.name for p in cpu_variants.other_backends(tmp_path)] == [f"{base}cuda{suffix}"]


def test_a_build_without_variants_loads_nothing_itself():
    if cpu_variants.variant_files(cpu_variants.library_folder()):
        pytest.skip("this set-up was built with CPU variants")
    assert cpu_variants.load_backends() is None


# -- a set-up built with variants ------------------------------------------------------------------------------

needs_variants = pytest.mark.skipif(not cpu_variants.variant_files(cpu_variants.library_folder()),
                                    reason="llama.cpp built without CPU variants (PONDER_CPU_VARIANTS=1 dev.py setup)")

ANSWER = """
import json, sys
from engine import AskOptions, Engine, LoadSettings, SamplingSettings, detect_backend
engine = Engine()
engine.load(sys.argv[1], LoadSettings(n_ctx=512, n_gpu_layers=0))
answer = engine.ask("The capital of France is", options=AskOptions(
    max_tokens=8, sampling=SamplingSettings(temperature=0), prompt_format="completion"))
print(json.dumps({"variant": detect_backend().cpu_variant, "answer": answer.text}))
"""


def answer_with(model: Path, variant: str | None) -> subprocess.CompletedProcess:
    """A fresh process (ggml loads one CPU variant per process) that loads the model and answers."""
    env = {k: v for k, v in os.environ.items() if k != cpu_variants.FORCE_VARIANT}
    if variant:
        env[cpu_variants.FORCE_VARIANT] = variant
    return subprocess.run([sys.executable, "-c", ANSWER, str(model)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


@needs_variants
def test_the_picked_variant_answers(gemma_model):
    done = answer_with(gemma_model, None)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["answer"].strip()
    assert report["variant"] in cpu_variants.variant_files(cpu_variants.library_folder())
    assert report["variant"] not in cpu_variants.NEVER_PICKED


@needs_variants
def test_forcing_the_lowest_variant_still_answers(gemma_model):
    done = answer_with(gemma_model, "x64")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report == {"variant": "x64", "answer": report["answer"]} and report["answer"].strip()


@needs_variants
def test_forcing_an_unknown_variant_fails_with_a_sentence(gemma_model):
    done = answer_with(gemma_model, "avx10")
    assert done.returncode != 0
    assert "PONDER_CPU_VARIANT=avx10 names no CPU variant of this build" in done.stderr
