"""serve_vs_llama_server's baseline: llama-server built once per llama-cpp-python version and build flags, and a
machine that cannot build it skips the bench with the reason instead of failing."""
from __future__ import annotations

from importlib import metadata

from bench import llama_server, serve


def test_one_build_per_version_and_flags_beside_the_wheels(monkeypatch, tmp_path):
    monkeypatch.setenv("PONDER_WHEEL_CACHE", str(tmp_path / "wheels"))
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
    plain, version, flags = llama_server.location()
    assert plain.parent.parent == tmp_path / "llama-server"
    assert version == metadata.version("llama-cpp-python")  # the llama.cpp the engine runs
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_CUDA=on")
    cuda, _, cuda_flags = llama_server.location()
    assert cuda != plain and "-DGGML_CUDA=on" in cuda_flags and set(flags.split()) <= set(cuda_flags.split())


def test_without_cmake_the_bench_is_skipped_with_the_reason(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PONDER_WHEEL_CACHE", str(tmp_path / "wheels"))
    monkeypatch.setattr(llama_server.shutil, "which", lambda name: None)
    assert serve.bench_serve_vs_llama_server() == []
    err = capsys.readouterr().err
    assert "serve_vs_llama_server skipped" in err and "cmake is not installed" in err
