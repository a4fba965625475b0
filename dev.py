#!/usr/bin/env python3
"""Set up Ponder on this machine and run it, or its tests.

    python3 dev.py run  [ponder arguments]   set up, then start Ponder
    python3 dev.py test [pytest arguments]   set up, then run the test suite

Set-up is idempotent and quick when nothing changed: a virtual environment in
.venv, llama-cpp-python built once per set of build flags and kept as a wheel
in a cache folder outside the checkout (so fresh clones and CI reuse it), and
the project installed in editable mode with its test extras.
"""
from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("PONDER_VENV", ROOT / ".venv"))
STAMP = VENV / ".ponder-setup"

# Measured: a default (-march=native) build enables AMX on these Xeons and the
# first llama_decode segfaults in ggml_backend_amx_mul_mat; these flags run everywhere.
PORTABLE_X86_FLAGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
)


def say(message: str) -> None:
    print(f"[dev] {message}", file=sys.stderr, flush=True)


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def llama_requirement() -> str:
    """The pinned llama-cpp-python requirement, read from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return next(d for d in project["dependencies"] if d.startswith("llama-cpp-python"))


def build_flags() -> str:
    """The user's own CMAKE_ARGS win; else portable flags on x86-64, llama.cpp's defaults elsewhere."""
    if os.environ.get("CMAKE_ARGS"):
        return os.environ["CMAKE_ARGS"]
    if platform.machine().lower() in ("x86_64", "amd64"):
        return PORTABLE_X86_FLAGS
    return ""  # macOS arm64 builds Metal by default


def wheel_cache() -> Path:
    base = os.environ.get("PONDER_WHEEL_CACHE")
    if base:
        return Path(base)
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "ponder-build" / "wheels"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ponder-build" / "wheels"


def installed_version(python: Path, distribution: str) -> str | None:
    probe = f"import importlib.metadata as m\ntry: print(m.version({distribution!r}))\nexcept m.PackageNotFoundError: pass"
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout
    return out.strip() or None


def ensure_llama(python: Path) -> None:
    """Install llama-cpp-python from a wheel built once per (version, flags, platform)."""
    requirement = llama_requirement()
    version = requirement.split("==")[1]
    flags = build_flags()
    key_source = f"{version}|{flags}|{platform.system()}|{platform.machine()}|{sys.version_info[:2]}"
    key = hashlib.sha256(key_source.encode()).hexdigest()[:16]
    marker = VENV / ".llama-build-key"
    if installed_version(python, "llama-cpp-python") == version and marker.exists() and marker.read_text() == key:
        return
    folder = wheel_cache() / key
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    if not wheels:
        folder.mkdir(parents=True, exist_ok=True)
        say(f"building {requirement} with CMAKE_ARGS={flags!r} (about 5 minutes on 2 cores, once per machine)")
        env = dict(os.environ, CMAKE_ARGS=flags)
        env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.run([python, "-m", "pip", "wheel", "--no-deps", "-w", folder, requirement], env=env, check=True)
        wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    say(f"installing {wheels[-1].name} from {folder}")
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "--force-reinstall", wheels[-1]], check=True)
    marker.write_text(key)


def ensure_environment() -> Path:
    if sys.version_info < (3, 11):
        sys.exit(f"Ponder needs Python 3.11 or newer; this is {platform.python_version()}.")
    python = venv_python()
    if not python.exists():
        say(f"creating a virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    ensure_llama(python)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != wanted:
        say("installing Ponder and its dependencies")
        subprocess.run([python, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]"], check=True)
        no_deps = tomllib.loads((ROOT / "pyproject.toml").read_text()).get("tool", {}).get("ponder", {})
        if no_deps.get("no-deps"):
            subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", *no_deps["no-deps"]], check=True)
        STAMP.write_text(wanted)
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test", "setup"):
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    python = ensure_environment()
    if command == "setup":
        return 0
    if command == "run":
        return subprocess.call([python, "-m", "app.main", *rest], cwd=ROOT)
    return subprocess.call([python, "-m", "pytest", *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
