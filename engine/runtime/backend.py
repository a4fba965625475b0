"""Which accelerator the bundled llama.cpp can use, and llama.cpp's log routed into Python logging."""
from __future__ import annotations

import ctypes
import functools
import logging
import os
from collections import deque
from dataclasses import dataclass

import llama_cpp
import psutil

from engine.runtime import cpu_variants

log = logging.getLogger("engine.llama_cpp")
_recent_errors: deque[str] = deque(maxlen=8)
_pending = {"text": "", "level": 0}
GGML_WARN, GGML_ERROR, GGML_CONT = 3, 4, 5


@llama_cpp.llama_log_callback
def _on_llama_log(level: int, text: bytes, _user_data) -> None:
    # llama.cpp logs line fragments; GGML_CONT continues the previous line at its level.
    if level != GGML_CONT:
        _pending["level"] = level
    _pending["text"] += text.decode("utf-8", errors="replace")
    if not _pending["text"].endswith("\n"):
        return
    line, _pending["text"] = _pending["text"].rstrip(), ""
    if _pending["level"] in (GGML_WARN, GGML_ERROR):
        _recent_errors.append(line)
    # Its errors become ModelError messages, and its warnings are about model files users cannot fix.
    log.log(logging.INFO if _pending["level"] == GGML_ERROR else logging.DEBUG, "%s", line)


def install_log_handler() -> None:
    """Route llama.cpp's own log to the `engine.llama_cpp` logger instead of stderr."""
    llama_cpp.llama_log_set(_on_llama_log, ctypes.c_void_p(0))


def recent_errors() -> list[str]:
    """The last warning and error lines llama.cpp logged (for turning a failure into a message)."""
    return list(_recent_errors)


def clear_recent_errors() -> None:
    _recent_errors.clear()


@dataclass(frozen=True, slots=True)
class Backend:
    """`name` is Metal, CUDA, Vulkan or CPU; `devices` lists what ggml found; `cpu_variant` is the CPU build
    loaded at start (`zen4`, `haswell`…; None for a build with one CPU backend linked in)."""

    name: str
    gpu_offload: bool
    devices: tuple[str, ...]
    system_info: str
    cpu_variant: str | None = None


GPU_DEVICE_TYPES = (1, 2)  # ggml_backend_dev_type: CPU 0, GPU 1, IGPU 2, ACCEL 3


@functools.cache
def _ggml():
    """libggml with the device API's prototypes declared (once); AttributeError on builds without it."""
    from llama_cpp import _ggml as module

    lib = module.libggml
    lib.ggml_backend_dev_count.restype = ctypes.c_size_t
    lib.ggml_backend_dev_get.restype = ctypes.c_void_p
    lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    for name in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
        getattr(lib, name).restype = ctypes.c_char_p
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_type.restype = ctypes.c_int
    lib.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_memory.restype = None
    lib.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t),
                                            ctypes.POINTER(ctypes.c_size_t)]
    return lib


def _devices():
    lib = _ggml()
    return lib, [lib.ggml_backend_dev_get(i) for i in range(lib.ggml_backend_dev_count())]


def _device_names() -> tuple[str, ...]:
    try:
        lib, devices = _devices()
        return tuple(f"{lib.ggml_backend_dev_name(d).decode()}: {lib.ggml_backend_dev_description(d).decode()}"
                     for d in devices)
    except (AttributeError, OSError) as e:  # older builds without the device API
        log.debug("device listing unavailable: %s", e)
        return ()


@functools.cache
def gpu_memory() -> int:
    """Total memory of the largest GPU ggml can use, in bytes (0 without one or without the device API)."""
    try:
        lib, devices = _devices()
        best = 0
        for dev in devices:
            if lib.ggml_backend_dev_type(dev) in GPU_DEVICE_TYPES:
                free, total = ctypes.c_size_t(), ctypes.c_size_t()
                lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
                best = max(best, total.value)
        return best
    except (AttributeError, OSError) as e:
        log.debug("device memory unavailable: %s", e)
        return 0


@functools.cache
def detect_backend() -> Backend:
    install_log_handler()
    variant = cpu_variants.load_backends()  # before llama_backend_init, which would look for them in the wrong place
    llama_cpp.llama_backend_init()
    info = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace")
    devices = _device_names()
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    joined = " ".join(devices) + " " + info
    name = "CPU"
    if offload:
        for candidate in ("Metal", "CUDA", "Vulkan", "HIP", "SYCL"):
            if candidate.lower() in joined.lower():
                name = candidate
                break
        else:
            name = "GPU"
    return Backend(name, offload, devices, info, variant)


def default_threads() -> int:
    """Physical cores: hyper-threads slow llama.cpp's decode down rather than up."""
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def default_gpu_layers() -> int:
    """All layers when the build can offload, none otherwise (-1 means all)."""
    return -1 if detect_backend().gpu_offload else 0


LLAMA_ALL_LAYERS = 0x7FFFFFFF  # llama.cpp offloads min(n_gpu_layers, the model's layers): the largest int is all


def llama_gpu_layers(layers: int | None) -> int:
    """The n_gpu_layers llama.cpp takes for Ponder's: None this machine's default, -1 (any negative) all."""
    layers = default_gpu_layers() if layers is None else layers
    return LLAMA_ALL_LAYERS if layers < 0 else layers
