"""Tests of the installers: packaging/build.py, packaging/ponder.spec, the release workflow, the frozen app."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_build():
    """packaging/build.py as a module (packaging/ is not a package: its name is the PyPI `packaging`'s)."""
    spec = importlib.util.spec_from_file_location("ponder_build", ROOT / "packaging" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_dev():
    """dev.py (the set-up script at the root) as a module."""
    spec = importlib.util.spec_from_file_location("ponder_dev", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
