"""Loading reports progress, can be cancelled, and a failed load leaves the loaded model in place."""
from __future__ import annotations

import pytest

from engine import AskOptions, Cancelled, Engine, LoadSettings, ModelError, Progress, SamplingSettings
from engine.runtime.backend import default_gpu_layers, default_threads, detect_backend


def test_progress_rises_to_one(gemma_model):
    seen: list[Progress] = []
    engine = Engine()
    engine.load(gemma_model, LoadSettings(n_ctx=512), on_progress=seen.append)
    fractions = [p.done for p in seen if p.label == "Loading model"]
    assert fractions and fractions == sorted(fractions) and fractions[-1] == 1.0
    engine.unload()


def test_cancel_during_load(gemma_model):
    engine = Engine()
    calls = []
    with pytest.raises(Cancelled):
        engine.load(gemma_model, LoadSettings(n_ctx=512), on_progress=calls.append, is_cancelled=lambda: len(calls) >= 2)
    assert engine.session is None


def test_failed_load_keeps_the_previous_model(gemma_model, tmp_path):
    engine = Engine()
    engine.load(gemma_model, LoadSettings(n_ctx=512))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 40)
    with pytest.raises(ModelError):
        engine.load(bad)
    answer = engine.ask("What is the capital of France?",
                        options=AskOptions(max_tokens=8, sampling=SamplingSettings(temperature=0)))
    assert answer.text.startswith("Paris")
    engine.unload()


def test_backend_and_defaults():
    backend = detect_backend()
    assert backend.name in ("CPU", "CUDA", "Metal", "Vulkan", "HIP", "SYCL", "GPU")
    assert "AVX2 = 1" in backend.system_info or backend.name != "CPU" or "NEON" in backend.system_info
    assert default_threads() >= 1
    assert default_gpu_layers() == (-1 if backend.gpu_offload else 0)
