#!/usr/bin/env python3
"""Set up Ponder on this machine and run it, or its tests.

    python3 dev.py run  [ponder arguments]   set up, then start Ponder
    python3 dev.py test [pytest arguments]   set up, then run the test suite
    python3 dev.py setup                     set up only

On x86-64 Linux llama.cpp is built for this machine's own instruction sets (AVX2, AVX-512, VNNI, BF16 where the
CPU has them; X86_OPTIONS below), so a wheel built here runs on CPUs with the same sets. PONDER_PORTABLE=1 builds
for any AVX2 CPU instead; PONDER_CPU_VARIANTS=1 builds the CPU code once per x86-64 instruction set and Ponder
loads the best one at start (CPU_VARIANT_FLAGS below): the release workflow's Linux and Windows builds do.

Set-up is idempotent and quick when nothing changed: a virtual environment in
.venv, llama-cpp-python built once per set of build flags and kept as a wheel
in a cache folder outside the checkout (so fresh clones and CI reuse it), and
the project installed in editable mode with its test extras.
"""
from __future__ import annotations

import hashlib
import importlib.util
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
# PONDER_CPU_VARIANTS=1, for the Linux and Windows installers: ggml's CPU backend as loadable libraries, one per
# instruction set from plain x86-64 to AVX-512 (GGML_CPU_ALL_VARIANTS, as llama.cpp's own releases are built), the
# best one loaded at start by engine/runtime/cpu_variants.py, which also leaves out the AMX one (the crash above).
# llama-cpp-python's CMakeLists installs only the libraries it names into llama_cpp/lib; ggml installs the variants
# into the prefix's bin/ (site-packages/bin), where nothing looks: CMAKE_INSTALL_BINDIR puts them beside libggml.
# Not the default set-up: the CPU code is compiled once per variant, 14 times with GCC (README: CPU variants).
CPU_VARIANT_FLAGS = ("-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON "
                     "-DCMAKE_INSTALL_BINDIR=llama_cpp/lib")
# The oldest macOS the app runs on: numpy's arm64 wheel for Python 3.11 on a macOS 14 machine is macosx_14_0 (it
# links Accelerate's new LAPACK), so the bundle needs 14 whatever llama.cpp is built for. packaging/build.py
# writes it into Info.plist as LSMinimumSystemVersion and refuses a bundle with a library that needs a newer one.
MACOS_DEPLOYMENT_TARGET = "14.0"
# Apple silicon: never the build machine's CPU (an M2+ runner's -mcpu=native code dies with SIGILL on an M1; the
# compiler's default arm64 target is the M1); Metal on, its shaders compiled into the library (no .metal file to
# find at run time).
MACOS_ARM_FLAGS = ("-DGGML_NATIVE=OFF -DGGML_METAL=ON -DGGML_METAL_EMBED_LIBRARY=ON "
                   f"-DCMAKE_OSX_DEPLOYMENT_TARGET={MACOS_DEPLOYMENT_TARGET}")
# With -DGGML_CUDA=on and no list of its own, CMake would build for "native", the build machine's GPU (and fail on
# one without a GPU). Real code for Turing, Ampere (consumer) and Ada; PTX that the driver compiles on first use for
# Pascal, Volta and anything newer (A100, Hopper, Blackwell) from the 80 entry.
CUDA_ARCHITECTURES = "61-virtual;70-virtual;75-real;80-virtual;86-real;89-real"


def say(message: str) -> None:
    print(f"[dev] {message}", file=sys.stderr, flush=True)


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def llama_requirement() -> str:
    """The pinned llama-cpp-python requirement, read from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return next(d for d in project["dependencies"] if d.startswith("llama-cpp-python"))


# This machine's own x86 instruction sets, for the set-up's build on Linux (read from /proc/cpuinfo): each
# GGML option (never GGML_NATIVE, never AMX: the crash above) with the cpuinfo flags it needs. The same sets as
# llama.cpp's CPU variants (zen4 = AVX512 + VBMI + VNNI + BF16): on an AVX-512 machine the 1.5B reads prompts
# ~1.4x faster than with the AVX2-only PORTABLE_X86_FLAGS. A wheel built so runs only on CPUs with these sets,
# which is why the installers are built with PONDER_CPU_VARIANTS=1 and PONDER_PORTABLE=1 gives the AVX2 build.
X86_OPTIONS = (
    ("GGML_AVX", {"avx"}), ("GGML_AVX2", {"avx2"}), ("GGML_FMA", {"fma"}), ("GGML_F16C", {"f16c"}),
    ("GGML_BMI2", {"bmi2"}), ("GGML_AVX_VNNI", {"avx_vnni"}),
    ("GGML_AVX512", {"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"}),
    ("GGML_AVX512_VBMI", {"avx512f", "avx512vbmi"}), ("GGML_AVX512_VNNI", {"avx512f", "avx512_vnni"}),
    ("GGML_AVX512_BF16", {"avx512f", "avx512_bf16"}),
)
NO_AMX = "-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"


def cpu_flags() -> set[str] | None:
    """This machine's CPU flags as Linux names them (None where /proc/cpuinfo cannot say)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    line = next((line for line in text.splitlines() if line.startswith("flags")), None)
    return set(line.split(":", 1)[1].split()) if line else None


def machine_x86_flags(flags: set[str]) -> str:
    """The build for a CPU with these cpuinfo flags: every instruction set X86_OPTIONS knows that it has."""
    options = [f"-D{name}={'ON' if needs <= flags else 'OFF'}" for name, needs in X86_OPTIONS]
    return " ".join(["-DGGML_NATIVE=OFF", *options, NO_AMX])


def portable_flags(system: str, machine: str, variants: bool = False) -> str:
    """The CMake flags every build gets on this kind of machine: portable CPU code, never the builder's own;
    with `variants`, on x86-64, the CPU code for every instruction set (CPU_VARIANT_FLAGS)."""
    machine = machine.lower()
    if machine in ("x86_64", "amd64"):
        return CPU_VARIANT_FLAGS if variants else PORTABLE_X86_FLAGS
    if system == "Darwin" and machine == "arm64":
        return MACOS_ARM_FLAGS
    return ""  # llama.cpp's defaults (Linux on ARM)


def _cmake_option(token: str) -> str | None:
    """The variable a `-DNAME=VALUE` or `-DNAME:TYPE=VALUE` token sets (None for any other token)."""
    if not token.startswith("-D") or "=" not in token:
        return None
    return token[2:].split("=", 1)[0].split(":", 1)[0]


def merge_cmake_args(portable: str, user: str) -> str:
    """The portable flags with the user's CMAKE_ARGS on top: a variable the user sets replaces the portable value,
    the rest of the portable flags stay (so `-DGGML_CUDA=on` alone adds CUDA to a portable CPU build instead of
    making it a -march=native one). A CUDA build without CMAKE_CUDA_ARCHITECTURES gets CUDA_ARCHITECTURES.
    Tokens are split on whitespace, as llama-cpp-python's build reads CMAKE_ARGS."""
    user_tokens = user.split()
    overridden = {_cmake_option(t) for t in user_tokens} - {None}
    tokens = [t for t in portable.split() if _cmake_option(t) not in overridden] + user_tokens
    values = {_cmake_option(t): t.split("=", 1)[1] for t in tokens if _cmake_option(t)}
    if values.get("GGML_CUDA", "").upper() in ("ON", "1", "TRUE", "YES") and "CMAKE_CUDA_ARCHITECTURES" not in values:
        tokens.append(f"-DCMAKE_CUDA_ARCHITECTURES={CUDA_ARCHITECTURES}")
    return " ".join(tokens)


def wants_cpu_variants() -> bool:
    return os.environ.get("PONDER_CPU_VARIANTS", "") == "1"


def wants_portable() -> bool:
    return os.environ.get("PONDER_PORTABLE", "") == "1"


def base_flags(system: str, machine: str) -> str:
    """The set-up's own build: on x86-64 Linux, for this machine's instruction sets (machine_x86_flags) unless
    PONDER_PORTABLE=1 or PONDER_CPU_VARIANTS=1 asks for a build that runs on other CPUs too; elsewhere the
    portable flags."""
    variants = wants_cpu_variants()
    flags = cpu_flags() if system == "Linux" and machine.lower() == "x86_64" else None
    if variants or wants_portable() or not flags:
        return portable_flags(system, machine, variants=variants)
    return machine_x86_flags(flags)


def build_flags() -> str:
    """This machine's flags (base_flags), with the user's own CMAKE_ARGS merged on top (merge_cmake_args)."""
    return merge_cmake_args(base_flags(platform.system(), platform.machine()), os.environ.get("CMAKE_ARGS", ""))


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
    said = VENV / ".llama-build-flags"  # for packaging/build.py: whom a bundle of this build runs on
    if installed_version(python, "llama-cpp-python") == version and marker.exists() and marker.read_text() == key:
        said.write_text(flags)
        return
    folder = wheel_cache() / key
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    if not wheels:
        folder.mkdir(parents=True, exist_ok=True)
        how_long = ("the CPU code once per variant: several times the portable build's 5 minutes on 2 cores"
                    if wants_cpu_variants() else "about 5 minutes on 2 cores")
        say(f"building {requirement} with CMAKE_ARGS={flags!r} ({how_long}, once per machine)")
        env = dict(os.environ, CMAKE_ARGS=flags)
        if sys.platform == "darwin":
            env.setdefault("MACOSX_DEPLOYMENT_TARGET", MACOS_DEPLOYMENT_TARGET)  # also the wheel's platform tag
        env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        # Built from the sdist, never pip's own wheel cache: pip keys that by the download, not by CMAKE_ARGS, so a
        # machine that built llama-cpp-python once would get that first build back whatever the flags now say.
        subprocess.run([python, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "--no-binary", "llama-cpp-python",
                        "-w", folder, requirement], env=env, check=True)
        wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    say(f"installing {wheels[-1].name} from {folder}")
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "--force-reinstall", wheels[-1]], check=True)
    marker.write_text(key)
    said.write_text(flags)


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


def system_advice() -> str | None:
    """What to install when the window could not open: the system libraries Qt's X11 plugin needs
    (app/system_libs.py, standard library only, so it runs before the virtual environment exists)."""
    spec = importlib.util.spec_from_file_location("ponder_system_libs", ROOT / "app" / "system_libs.py")
    system_libs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(system_libs)
    site = next(iter(sorted(VENV.glob("lib/python3*/site-packages"))), None)
    plugin = system_libs.xcb_plugin(site) if site is not None else None  # None before the first set-up
    return system_libs.check(plugin, program="dev.py run")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test", "setup"):
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "run" and not rest and (advice := system_advice()):
        print(advice, file=sys.stderr)  # said before a 5-minute set-up, not after it as Qt's abort
        return 3
    python = ensure_environment()
    if command == "setup":
        return 0
    if command == "run":
        return subprocess.call([python, "-m", "app.main", *rest], cwd=ROOT)
    return subprocess.call([python, "-m", "pytest", *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
