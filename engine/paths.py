"""Where Ponder keeps user data. PONDER_HOME moves all of it (tests, portable installs)."""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "Ponder"


def data_dir() -> Path:
    """Models, history and indexes."""
    home = os.environ.get("PONDER_HOME")
    path = Path(home) / "data" if home else platformdirs.user_data_path(APP_NAME, appauthor=False)
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    """Settings."""
    home = os.environ.get("PONDER_HOME")
    path = Path(home) / "config" if home else platformdirs.user_config_path(APP_NAME, appauthor=False)
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """The models folder: any GGUF file dropped here is listed."""
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path
