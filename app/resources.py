"""Files the app ships (icon), found the same way from a checkout and from a PyInstaller bundle."""
from __future__ import annotations

import sys
from pathlib import Path

SMALL_ICON_PX = (16, 20, 24, 32)  # drawn from the simpler picture: the full one's bars blur together this small
LARGE_ICON_PX = (48, 64, 128, 256, 512, 1024)


def resources_dir() -> Path:
    bundle = getattr(sys, "_MEIPASS", None)  # PyInstaller unpacks data files here
    return Path(bundle) / "resources" if bundle else Path(__file__).resolve().parent.parent / "resources"


def icon_path() -> Path:
    return resources_dir() / "ponder.svg"


def app_icon():
    """The window and task-bar icon at every size: the simple picture up to 32 px, the full one above."""
    from PySide6.QtCore import QSize
    from PySide6.QtGui import QIcon

    icon = QIcon()
    for sizes, name in ((SMALL_ICON_PX, "ponder-small.svg"), (LARGE_ICON_PX, "ponder.svg")):
        path = resources_dir() / name
        if path.exists():
            for px in sizes:
                icon.addFile(str(path), QSize(px, px))
    return icon
