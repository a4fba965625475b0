"""Files the app ships (icon), found the same way from a checkout and from a PyInstaller bundle."""
from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    bundle = getattr(sys, "_MEIPASS", None)  # PyInstaller unpacks data files here
    return Path(bundle) / "resources" if bundle else Path(__file__).resolve().parent.parent / "resources"


def icon_path() -> Path:
    return resources_dir() / "ponder.svg"
