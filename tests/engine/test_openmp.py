"""engine/openmp.py: how llama.cpp's threads wait is set before llama.cpp loads, and only where it should be."""
import subprocess
import sys

from engine.openmp import SETTINGS, tune


def test_set_on_linux_unless_the_user_chose_or_another_platform():
    env: dict[str, str] = {}
    assert tune(env, "linux") == "set" and env == SETTINGS
    chosen = {"OMP_WAIT_POLICY": "PASSIVE"}
    assert tune(chosen, "linux") == "user" and chosen == {"OMP_WAIT_POLICY": "PASSIVE"}
    for platform in ("darwin", "win32"):
        other: dict[str, str] = {}
        assert tune(other, platform) == "other platform" and other == {}


def test_every_entry_point_sets_it_before_llama_cpp_loads():
    """The CLI and the window (app.main), the bench's child processes, and scripts that import the engine: a
    module that loaded llama.cpp first would leave libgomp at its defaults ("too late")."""
    if not sys.platform.startswith("linux"):
        return
    env = {k: v for k, v in __import__("os").environ.items() if k not in SETTINGS}
    for first in ("app.main", "app.cli", "bench.openmp", "bench.core", "engine"):
        code = f"import {first}, engine.openmp as o, llama_cpp; print(o.STATE)"
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "set", (first, out.stdout, out.stderr)
