"""dev.py's llama.cpp build flags: portable per platform, and a user's CMAKE_ARGS merged on top, not instead."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.packaging import load_dev

dev = load_dev()


def options(flags: str) -> dict[str, str]:
    return dict(token[2:].split("=", 1) for token in flags.split() if token.startswith("-D"))


ZEN4 = {"fpu", "sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx512f", "avx512cd", "avx512vl", "avx512dq",
        "avx512bw", "avx512vbmi", "avx512_vnni", "avx512_bf16"}
SAPPHIRE_RAPIDS = ZEN4 | {"avx_vnni", "amx_tile", "amx_int8", "amx_bf16"}
HASWELL = {"fpu", "sse4_2", "avx", "avx2", "fma", "f16c", "bmi2"}


def on(flags: str) -> set[str]:
    return {name for name, value in options(flags).items() if value == "ON"}


def test_linux_builds_for_the_machines_own_instruction_sets_and_never_amx():
    assert on(dev.machine_x86_flags(ZEN4)) == {"GGML_AVX", "GGML_AVX2", "GGML_FMA", "GGML_F16C", "GGML_BMI2",
                                               "GGML_AVX512", "GGML_AVX512_VBMI", "GGML_AVX512_VNNI",
                                               "GGML_AVX512_BF16"}  # what llama.cpp's zen4 variant has
    sapphire = options(dev.machine_x86_flags(SAPPHIRE_RAPIDS))
    assert sapphire["GGML_AVX_VNNI"] == "ON"
    assert sapphire["GGML_AMX_TILE"] == sapphire["GGML_AMX_INT8"] == sapphire["GGML_AMX_BF16"] == "OFF"  # the crash
    assert options(dev.machine_x86_flags(ZEN4))["GGML_NATIVE"] == "OFF"


def test_an_avx2_machine_gets_what_the_portable_build_has_and_an_older_one_no_avx2():
    assert on(dev.machine_x86_flags(HASWELL)) == on(dev.PORTABLE_X86_FLAGS)
    assert options(dev.machine_x86_flags(HASWELL))["GGML_AVX512"] == "OFF"
    older = options(dev.machine_x86_flags({"fpu", "sse4_2", "avx"}))  # Sandy Bridge: the AVX2 build dies (SIGILL)
    assert older["GGML_AVX"] == "ON" and older["GGML_AVX2"] == older["GGML_FMA"] == "OFF"
    # AVX-512 is one option for five flags: a CPU with only some of them does not get it
    assert options(dev.machine_x86_flags(HASWELL | {"avx512f", "avx512cd"}))["GGML_AVX512"] == "OFF"


def test_cpuinfo_is_read_on_linux():
    flags = dev.cpu_flags()
    if not Path("/proc/cpuinfo").exists():
        assert flags is None
        return
    assert flags and "fpu" in flags


def test_the_set_up_build_is_this_machines_on_linux_and_portable_elsewhere_or_when_asked(monkeypatch):
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
    monkeypatch.delenv("PONDER_CPU_VARIANTS", raising=False)
    monkeypatch.delenv("PONDER_PORTABLE", raising=False)
    monkeypatch.setattr(dev, "cpu_flags", lambda: set(ZEN4))
    assert dev.base_flags("Linux", "x86_64") == dev.machine_x86_flags(ZEN4)
    assert dev.base_flags("Windows", "AMD64") == dev.PORTABLE_X86_FLAGS  # no cpuinfo: any AVX2 CPU
    assert dev.base_flags("Darwin", "arm64") == dev.MACOS_ARM_FLAGS
    monkeypatch.setenv("PONDER_PORTABLE", "1")
    assert dev.base_flags("Linux", "x86_64") == dev.PORTABLE_X86_FLAGS
    monkeypatch.delenv("PONDER_PORTABLE")
    monkeypatch.setattr(dev, "cpu_flags", lambda: None)  # cpuinfo unreadable
    assert dev.base_flags("Linux", "x86_64") == dev.PORTABLE_X86_FLAGS
    monkeypatch.setattr(dev, "cpu_flags", lambda: set(ZEN4))
    monkeypatch.setattr(dev.platform, "system", lambda: "Linux")
    monkeypatch.setattr(dev.platform, "machine", lambda: "x86_64")
    assert dev.build_flags() == dev.machine_x86_flags(ZEN4)  # same string, same wheel cache key each time
    assert dev.merge_cmake_args(dev.PORTABLE_X86_FLAGS, "") == dev.PORTABLE_X86_FLAGS


def test_a_cuda_request_keeps_the_portable_cpu_flags_and_gets_an_explicit_architecture_list():
    flags = options(dev.merge_cmake_args(dev.PORTABLE_X86_FLAGS, "-DGGML_CUDA=on"))
    assert flags["GGML_CUDA"] == "on"
    assert flags["GGML_NATIVE"] == "OFF" and flags["GGML_AVX2"] == "ON"  # not -march=native (the AMX crash)
    assert flags["CMAKE_CUDA_ARCHITECTURES"] == dev.CUDA_ARCHITECTURES
    assert "native" not in dev.CUDA_ARCHITECTURES


def test_the_users_value_wins_for_a_variable_both_set_and_their_other_tokens_stay():
    merged = dev.merge_cmake_args(dev.PORTABLE_X86_FLAGS,
                                  "-DGGML_AVX2:BOOL=OFF -DGGML_CUDA=1 -DCMAKE_CUDA_ARCHITECTURES=86-real -G Ninja")
    tokens = merged.split()
    assert "-DGGML_AVX2=ON" not in tokens and "-DGGML_AVX2:BOOL=OFF" in tokens
    assert "-DGGML_FMA=ON" in tokens and tokens[-2:] == ["-G", "Ninja"]
    assert options(merged)["CMAKE_CUDA_ARCHITECTURES"] == "86-real"  # theirs, not ours
    assert merged.count("CMAKE_CUDA_ARCHITECTURES") == 1


@pytest.mark.parametrize("value", ["OFF", "off", "0"])
def test_no_architecture_list_without_cuda(value):
    assert "CMAKE_CUDA_ARCHITECTURES" not in dev.merge_cmake_args(dev.PORTABLE_X86_FLAGS, f"-DGGML_CUDA={value}")


def test_apple_silicon_builds_for_any_m1_with_metal_embedded_for_the_deployment_target():
    flags = options(dev.portable_flags("Darwin", "arm64"))
    assert flags["GGML_NATIVE"] == "OFF"  # an M2+ builder's -mcpu=native dies with SIGILL on an M1
    assert flags["GGML_METAL"] == "ON" and flags["GGML_METAL_EMBED_LIBRARY"] == "ON"
    assert flags["CMAKE_OSX_DEPLOYMENT_TARGET"] == dev.MACOS_DEPLOYMENT_TARGET


def test_linux_on_arm_keeps_llama_cpps_defaults():
    assert dev.portable_flags("Linux", "aarch64") == ""
    assert dev.portable_flags("Linux", "x86_64") == dev.portable_flags("Windows", "AMD64") == dev.PORTABLE_X86_FLAGS


def test_cpu_variants_build_every_instruction_set_as_loadable_libraries_into_llama_cpp_lib(monkeypatch):
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
    monkeypatch.setattr(dev.platform, "machine", lambda: "x86_64")
    monkeypatch.setenv("PONDER_CPU_VARIANTS", "1")
    flags = options(dev.build_flags())
    assert flags["GGML_BACKEND_DL"] == "ON" and flags["GGML_CPU_ALL_VARIANTS"] == "ON"
    assert flags["GGML_NATIVE"] == "OFF"  # ggml refuses GGML_NATIVE with GGML_BACKEND_DL
    assert flags["CMAKE_INSTALL_BINDIR"] == "llama_cpp/lib"  # beside libggml, where Ponder looks for them
    assert "GGML_AVX2" not in flags  # each variant sets its own instruction sets
    monkeypatch.setenv("PONDER_CPU_VARIANTS", "0")
    assert "GGML_CPU_ALL_VARIANTS" not in dev.build_flags()  # the default set-up builds one CPU library


def test_cpu_variants_are_x86_only():
    assert dev.portable_flags("Darwin", "arm64", variants=True) == dev.MACOS_ARM_FLAGS
    assert dev.portable_flags("Linux", "aarch64", variants=True) == ""
    assert dev.portable_flags("Windows", "AMD64", variants=True) == dev.CPU_VARIANT_FLAGS


def test_the_wheel_is_built_from_source_with_these_flags_never_taken_from_pips_cache(monkeypatch, tmp_path):
    """pip caches a wheel it built by the sdist's URL, not by CMAKE_ARGS: without --no-cache-dir a machine that once
    built the portable wheel got it back when asked for the CPU variants (found building them here)."""
    calls = []

    def run(cmd, **kwargs):
        calls.append((cmd, kwargs))
        if "wheel" in cmd:
            folder = Path(cmd[cmd.index("-w") + 1])
            (folder / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl").write_bytes(b"")
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(dev, "VENV", tmp_path / "venv")
    (tmp_path / "venv").mkdir()
    monkeypatch.setenv("PONDER_WHEEL_CACHE", str(tmp_path / "wheels"))
    monkeypatch.setenv("PONDER_CPU_VARIANTS", "1")
    monkeypatch.setattr(dev, "installed_version", lambda python, name: None)
    monkeypatch.setattr(dev.subprocess, "run", run)
    dev.ensure_llama(Path("python"))
    (wheel, kwargs), (install, _) = calls
    assert wheel[1:4] == ["-m", "pip", "wheel"] and "--no-cache-dir" in wheel
    assert wheel[wheel.index("--no-binary") + 1] == "llama-cpp-python"
    assert kwargs["env"]["CMAKE_ARGS"] == dev.build_flags()
    assert "install" in install and install[-1].name.endswith(".whl")


def test_a_bundle_says_when_its_llama_cpp_runs_only_on_cpus_like_the_builders(tmp_path, capsys):
    from tests.packaging import load_build

    build = load_build()
    assert build.only_this_cpu(dev.machine_x86_flags(ZEN4)) == "AVX512, AVX512_VBMI, AVX512_VNNI, AVX512_BF16"
    assert build.only_this_cpu(dev.machine_x86_flags(HASWELL)) is None
    assert build.only_this_cpu(dev.PORTABLE_X86_FLAGS) is None
    assert build.only_this_cpu(dev.CPU_VARIANT_FLAGS) is None
    (tmp_path / ".llama-build-flags").write_text(dev.machine_x86_flags(SAPPHIRE_RAPIDS))
    build.warn_if_only_this_cpu(tmp_path)
    said = capsys.readouterr().err
    assert "AVX_VNNI, AVX512" in said and "PONDER_CPU_VARIANTS=1" in said
    (tmp_path / ".llama-build-flags").write_text(dev.PORTABLE_X86_FLAGS)
    build.warn_if_only_this_cpu(tmp_path)
    assert capsys.readouterr().err == ""
