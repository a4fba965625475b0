"""How llama.cpp's worker threads wait on Linux, set before llama.cpp is loaded (engine/__init__.py and
bench/__init__.py import this first).

llama.cpp's Linux build runs each computation on an OpenMP team (GNU libgomp) and meets at a barrier after every
operation, a few hundred times per token. Each thread that has ever run a computation on more than one thread
keeps a team of its own for as long as it lives: the window's answering and server threads, the server's batch
thread, a thread that measured or embedded. Once those teams hold more threads than the machine has cores,
libgomp spins only 100 times at a barrier before sleeping in the kernel, instead of ~300,000 (GOMP_SPINCOUNT's
default), and every barrier becomes a sleep and a wake-up. Measured on 2 cores with the 1.5B model: one token
at a time drops from 29-31 to 23 tokens/s as soon as a second thread has run a computation and lives on, and is
back to 30 when that thread ends; `ponder bench --only openmp_second_thread` shows it.

OMP_WAIT_POLICY=ACTIVE lengthens that short spin (libgomp's env.c: 1,000 instead of 100), and GOMP_SPINCOUNT=300000 keeps the
ordinary spin at its default rather than ACTIVE's endless one, so idle threads still sleep after about a
millisecond. Nothing is changed where the user set either variable, or off Linux (macOS builds use ggml's own
thread pool; Windows builds, MSVC's OpenMP, which reads neither GOMP_ variable).
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

SETTINGS = {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": "300000"}
log = logging.getLogger(__name__)


def _libgomp_loaded() -> bool:
    """Whether libgomp is in this process already (it reads the variables once, as it loads)."""
    try:
        return "libgomp" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def tune(environ=os.environ, platform: str = sys.platform) -> str:
    """Set SETTINGS in `environ` on Linux unless the user set either. What happened: "set", "user" (left as
    the user set it), "other platform", or "too late" (llama.cpp was loaded before Ponder's engine: a bug)."""
    if not platform.startswith("linux"):
        return "other platform"
    if any(name in environ for name in SETTINGS):
        return "user"
    environ.update(SETTINGS)
    if environ is os.environ and _libgomp_loaded():
        log.warning("llama.cpp was loaded before engine/openmp.py ran: its threads wait with libgomp's defaults")
        return "too late"
    return "set"


STATE = tune()
