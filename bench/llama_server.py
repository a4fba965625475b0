"""llama.cpp's own `llama-server`, the baseline of `serve_vs_llama_server`: built once from the llama.cpp that the
pinned llama-cpp-python's sdist vendors (so both sides run the same llama.cpp), with dev.py's build flags (the
portable CPU flags and the user's CMAKE_ARGS, as the wheel was built), and kept beside dev.py's wheels.

Only the `llama-server` target is built (static, no web UI, no HTTPS): 30 to 60 minutes on 2 cores shared with
other work the first time (an interrupted build resumes), then nothing. Whatever stops the build (no cmake or
compiler, no network for the sdist, not a checkout with dev.py) is an `Unavailable` with the reason, and the
bench is skipped rather than failed.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
BUILD_TIMEOUT_S = 3 * 3600
# The machines these benches run on have 2 cores, and a build may share them; CMAKE_BUILD_PARALLEL_LEVEL says more.
JOBS = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
# Server only: no tests, examples, web UI (it would be downloaded) or HTTPS; static, so the one file is enough.
CMAKE_OPTIONS = ["-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_BUILD_TESTS=OFF",
                 "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_SERVER=ON",
                 "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_OPENSSL=OFF"]


class Unavailable(Exception):
    """llama-server cannot be had on this machine; the message says why."""


def _dev():
    """dev.py, whose pinned version and build flags the baseline must share."""
    path = ROOT / "dev.py"
    if not path.exists():
        raise Unavailable("dev.py is not here (Ponder installed, not a checkout), and it holds the build flags")
    spec = importlib.util.spec_from_file_location("ponder_dev", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def location() -> tuple[Path, str, str]:
    """(where the binary is or will be, llama-cpp-python's version, the CMake flags)."""
    dev = _dev()
    version = dev.llama_requirement().split("==")[1]
    flags = dev.build_flags()
    key = hashlib.sha256(f"{version}|{flags}|{platform.system()}|{platform.machine()}".encode()).hexdigest()[:16]
    name = "llama-server.exe" if os.name == "nt" else "llama-server"
    return dev.wheel_cache().parent / "llama-server" / key / name, version, flags


def ensure(say: Callable[[str], None]) -> Path:
    """The llama-server binary, built the first time; Unavailable when it cannot be. An interrupted build goes on
    where it stopped next time (its source and build folders stay beside the binary until it is made)."""
    exe, version, flags = location()
    if exe.exists():
        return exe
    if shutil.which("cmake") is None:
        raise Unavailable("cmake is not installed")
    work = exe.parent / "work"
    work.mkdir(parents=True, exist_ok=True)
    log_path = exe.parent / "build.log"
    say(f"building llama-server from llama-cpp-python {version}'s llama.cpp with {flags or 'default flags'} "
        f"(once; 30-60 minutes on 2 busy cores), log in {log_path}")
    with open(log_path, "a") as log:
        def run(*cmd) -> None:
            log.write(f"$ {' '.join(map(str, cmd))}\n")
            log.flush()
            try:
                subprocess.run([str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT, check=True,
                               timeout=BUILD_TIMEOUT_S)
            except (OSError, subprocess.SubprocessError) as e:
                raise Unavailable(f"`{' '.join(map(str, cmd[:4]))} …` failed ({e}); see {log_path}") from None

        source = _source(work, version, run)
        run("cmake", "-S", source, "-B", work / "build", *CMAKE_OPTIONS, *flags.split())
        run("cmake", "--build", work / "build", "--config", "Release", "--target", "llama-server", "-j", JOBS)
        built = next((work / "build").rglob(exe.name), None)
        if built is None:
            raise Unavailable(f"the build made no {exe.name}; see {log_path}")
        partial = exe.with_name(exe.name + ".part")
        shutil.copy2(built, partial)
        os.replace(partial, exe)  # a build killed half-way leaves no binary to trust
    shutil.rmtree(work, ignore_errors=True)
    return exe


def _source(work: Path, version: str, run: Callable) -> Path:
    """llama.cpp as llama-cpp-python `version`'s sdist vendors it, unpacked under `work` (once)."""
    unpacked = work / "source"
    if not (unpacked / "CMakeLists.txt").exists():
        with tempfile.TemporaryDirectory(prefix="ponder-sdist-") as tmp:
            run(sys.executable, "-m", "pip", "download", f"llama-cpp-python=={version}", "--no-binary", ":all:",
                "--no-deps", "--quiet", "-d", tmp)
            sdist = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"), None)
            if sdist is None:
                raise Unavailable(f"pip downloaded no sdist of llama-cpp-python {version}")
            with tarfile.open(sdist) as tar:
                tar.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
            shutil.rmtree(unpacked, ignore_errors=True)
            shutil.move(next(Path(tmp).glob("llama_cpp_python-*/vendor/llama.cpp")), unpacked)
    return unpacked
