"""`ponder selftest --gpu-layers N`: CI runs the frozen app's selftests CPU-only (a hosted Mac's paravirtual GPU
hangs or asserts in Metal kernels), so 0 must reach the model load as "no GPU at all"."""
from __future__ import annotations

import ctypes
from types import SimpleNamespace

import pytest

from app import cli
from engine.runtime import session
from engine.runtime.session import LoadSettings


class FakeEngine:
    loads: list = []

    def load(self, model, settings):
        FakeEngine.loads.append(settings)

    def ask(self, question, options):
        return SimpleNamespace(text="Paris", model="fake", timings=SimpleNamespace(
            load_s=0.0, ttft_s=0.0, prefill_tok_s=0.0, decode_tok_s=0.0))


@pytest.fixture
def fake_engine(monkeypatch):
    FakeEngine.loads = []
    monkeypatch.setattr(cli, "Engine", FakeEngine)
    monkeypatch.setattr(cli, "asdict", lambda timings: vars(timings))
    monkeypatch.setattr(cli, "detect_backend", lambda: SimpleNamespace(name="CPU", devices=[], cpu_variant=""))
    return FakeEngine


@pytest.mark.parametrize("argv, layers", [(["selftest"], None), (["selftest", "--gpu-layers", "0"], 0),
                                          (["selftest", "--gpu-layers", "-1", "--json"], -1)])
def test_selftest_loads_with_the_gpu_layers_asked_for(fake_engine, argv, layers, capsys):
    assert cli.main(argv) == 0
    assert [s.n_gpu_layers for s in fake_engine.loads] == [layers]


def test_gui_selftest_gets_the_gpu_layers(monkeypatch):
    import app.selftest

    seen = []
    monkeypatch.setattr(app.selftest, "run_gui_selftest", lambda as_json, gpu_layers=None: seen.append(
        (as_json, gpu_layers)) or 0)
    assert cli.main(["selftest", "--gui", "--json", "--gpu-layers", "0"]) == 0
    assert seen == [(True, 0)]


def test_zero_gpu_layers_opens_no_gpu_device_and_offloads_no_op():
    callback = session.llama_cpp.llama_progress_callback(lambda progress, _data: True)
    cpu = session._model_params(LoadSettings(n_gpu_layers=0), callback)
    assert cpu.n_gpu_layers == 0 and cpu.devices == ctypes.addressof(session._CPU_ONLY)
    assert session._CPU_ONLY[0] is None  # the list's NULL end: no device but the CPU
    assert session._context_params(LoadSettings(n_gpu_layers=0), 1024).op_offload is False
    auto = session._model_params(LoadSettings(), callback)
    assert auto.devices is None  # llama.cpp's choice: every GPU it finds
    assert session._context_params(LoadSettings(), 1024).op_offload is True
