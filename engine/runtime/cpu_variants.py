"""Which of llama.cpp's CPU builds runs: in a release build, the best one this processor supports, loaded at start.

A release build (dev.py's `PONDER_CPU_VARIANTS=1`) compiles ggml's CPU code once per x86-64 instruction set —
`x64` (any 64-bit PC), `sse42`, `sandybridge` (AVX), `haswell` (AVX2: what the ordinary portable build has),
`skylakex` and on up to `zen4` (AVX-512 with VNNI and BF16) — as loadable libraries `libggml-cpu-NAME.so`
(`ggml-cpu-NAME.dll` on Windows) in llama_cpp/lib, and nothing else of the CPU backend (`GGML_BACKEND_DL`). Each
library says how well it fits this CPU (`ggml_backend_score`: 0 when it would use an instruction the CPU lacks),
and the best one is loaded before llama.cpp starts, with any GPU backend beside it. A PC without AVX2 then runs
the x64 or AVX code instead of dying with an illegal instruction, and an AVX-512 one runs AVX-512 code.

llama.cpp would search for these libraries itself (`ggml_backend_load_all`, called by `llama_backend_init` when
nothing is loaded yet), but only beside the executable and in the current folder: never in llama_cpp/lib, where
llama-cpp-python and the bundle keep them. So Ponder loads them, through ggml's own `ggml_backend_load`, before
anything calls `llama_backend_init`. A build without variants (the default set-up, CI) has its CPU backend linked
in, and this module does nothing there.

`PONDER_CPU_VARIANT=NAME` forces one (e.g. `haswell` to compare with the portable build, or `x64` when a variant
misbehaves on some processor); one this CPU cannot run is an error, not a crash.
"""
from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ModelError

log = logging.getLogger(__name__)

FORCE_VARIANT = "PONDER_CPU_VARIANT"
# The variant that matches the portable build's flags (dev.py's PORTABLE_X86_FLAGS: AVX, AVX2, FMA, F16C, BMI2).
AVX2_VARIANT = "haswell"
# Never chosen by score, and left out of the bundle (packaging/ponder.spec): `sapphirerapids` is the one variant
# compiled with AMX, and a build with AMX segfaulted in ggml_backend_amx_mul_mat at the first llama_decode on the
# Xeon development machines (the reason dev.py's portable flags exist). The next best variant (zen4, cooperlake)
# has the same AVX-512 kernels without AMX. PONDER_CPU_VARIANT=sapphirerapids still loads it where it is installed.
NEVER_PICKED = ("sapphirerapids",)
PREFIX = "ggml-cpu-" if sys.platform == "win32" else "libggml-cpu-"
SUFFIX = ".dll" if sys.platform == "win32" else ".so"  # ggml names its modules .so on macOS too


@dataclass(frozen=True, slots=True)
class Variant:
    """One CPU build: its name (`haswell`), its library and its score on this CPU (0: cannot run here)."""

    name: str
    path: Path
    score: int


def library_folder() -> Path:
    """llama_cpp/lib, where llama-cpp-python loads libllama from (inside the bundle too)."""
    import llama_cpp

    return Path(llama_cpp.__file__).resolve().parent / "lib"


def variant_files(folder: Path) -> dict[str, Path]:
    """The CPU variants in `folder`, by name."""
    return {p.name[len(PREFIX):-len(SUFFIX)]: p for p in sorted(folder.glob(f"{PREFIX}*{SUFFIX}"))}


def other_backends(folder: Path) -> list[Path]:
    """The GPU and other backend modules beside the variants (libggml-cuda.so, ggml-vulkan.dll…)."""
    prefix = PREFIX.replace("cpu-", "")
    return [p for p in sorted(folder.glob(f"{prefix}*{SUFFIX}"))
            if not p.name.startswith(PREFIX) and p.name[len(prefix):-len(SUFFIX)] not in ("base", "cpu")]


def score(path: Path) -> int:
    """How well the variant fits this CPU, by its own `ggml_backend_score` (built without its instruction set, so
    calling it is safe on any CPU); 0 when the library cannot even be opened."""
    try:
        library = ctypes.CDLL(str(path))
    except OSError as e:
        log.info("CPU variant %s cannot be opened: %s", path.name, e)
        return 0
    try:
        function = library.ggml_backend_score
        function.restype, function.argtypes = ctypes.c_int, []
        return function()
    except AttributeError:
        return 0
    finally:
        _close(library)


def _close(library: ctypes.CDLL) -> None:
    import _ctypes

    (_ctypes.FreeLibrary if sys.platform == "win32" else _ctypes.dlclose)(library._handle)


def choose(variants: list[Variant], forced: str | None = None) -> Variant:
    """The variant to load: `forced` by name, else the best score, never one of NEVER_PICKED."""
    if forced:
        chosen = next((v for v in variants if v.name == forced), None)
        if chosen is None:
            raise ModelError(f"{FORCE_VARIANT}={forced} names no CPU variant of this build; it has "
                             f"{', '.join(v.name for v in variants)}.")
        if chosen.score <= 0:
            raise ModelError(f"{FORCE_VARIANT}={forced}: this processor lacks instructions that variant uses; "
                             f"it can run {', '.join(v.name for v in variants if v.score > 0) or 'none of them'}.")
        return chosen
    usable = [v for v in variants if v.score > 0 and v.name not in NEVER_PICKED]
    if not usable:
        raise ModelError("None of llama.cpp's CPU variants runs on this processor "
                         f"({', '.join(v.name for v in variants)}).")
    return max(usable, key=lambda v: v.score)


def _ggml_load(path: Path) -> bool:
    # The ggml that libllama itself uses: a wheel stores libggml.so and libggml.so.0 as two copies of one file (no
    # symlinks in a zip), so llama_cpp._ggml's libggml.so is a second ggml with a registry of its own, and backends
    # loaded there are never seen by llama.cpp ("no backends are loaded", found on a CUDA build). dlsym through
    # libllama's handle searches libllama's own dependencies. Windows has one ggml.dll, and GetProcAddress searches
    # only the named module.
    if sys.platform == "win32":
        from llama_cpp import _ggml

        load = _ggml.libggml.ggml_backend_load
    else:
        from llama_cpp import llama_cpp as bindings

        load = bindings._lib.ggml_backend_load
    load.restype, load.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    # ggml turns the char* into a std::filesystem::path: the ANSI code page on Windows, bytes elsewhere.
    encoded = str(path).encode("mbcs") if sys.platform == "win32" else os.fsencode(path)
    return bool(load(encoded))


_loading = threading.Lock()  # the engine and documents lanes may both be first to start llama.cpp


def load_backends() -> str | None:
    """Load the CPU variant (and any GPU backend) before llama.cpp starts; returns the variant's name, or None for
    a build without variants. Once per process: ggml keeps what it loaded until the process ends."""
    with _loading:
        return _load_once()


@functools.cache
def _load_once() -> str | None:
    folder = library_folder()
    files = variant_files(folder)
    if not files:
        if os.environ.get(FORCE_VARIANT):
            log.warning("%s is set, but this llama.cpp has no CPU variants: its one CPU backend runs", FORCE_VARIANT)
        return None
    variants = [Variant(name, path, score(path)) for name, path in files.items()]
    chosen = choose(variants, os.environ.get(FORCE_VARIANT) or None)
    if not _ggml_load(chosen.path):
        raise ModelError(f"llama.cpp could not load its CPU code {chosen.path.name} (see the log).")
    log.info("CPU variant %s (score %d; %s)", chosen.name, chosen.score,
             ", ".join(f"{v.name} {v.score}" for v in variants))
    for path in other_backends(folder):
        # A GPU backend whose driver is missing (a CUDA build on a PC without NVIDIA's driver) fails here, logged
        # by llama.cpp, and the app runs on the CPU.
        log.info("backend %s %s", path.name, "loaded" if _ggml_load(path) else "not loaded (no driver for it?)")
    return chosen.name
