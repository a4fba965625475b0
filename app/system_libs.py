"""Whether Qt can open a window on this Linux desktop: the system libraries its xcb platform plugin links, and the
one command that installs the missing ones (instead of Qt's "could not load the Qt platform plugin" abort).

Standard library only: `dev.py run` uses it with the system's Python before the virtual environment exists.
"""
from __future__ import annotations

import ctypes.util
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

# What PySide6 6.x's libqxcb.so links beyond glibc and what every desktop has (`ldd libqxcb.so`), with the package
# that ships each: Debian/Ubuntu, Fedora. A fresh Debian lacked the first seven; packaging/linux/control declares
# them for the .deb.
LIBRARIES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
}
NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


def uses_xcb(env: Mapping[str, str] = os.environ, platform: str = sys.platform) -> bool:
    """True when Qt will open its window through X11 (xcb): on Linux, no other platform forced, not Wayland."""
    if not platform.startswith("linux"):
        return False
    forced = env.get("QT_QPA_PLATFORM", "")
    if forced:
        return forced.split(":")[0].split(";")[0] == "xcb"
    return not (env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE") == "wayland")


def xcb_plugin(site_packages: Path | None = None) -> Path | None:
    """PySide6's libqxcb.so: in `site_packages` (dev.py, for the virtual environment), in a PyInstaller bundle,
    or where this Python finds PySide6 (without importing Qt)."""
    if site_packages is not None:
        roots = [site_packages / "PySide6"]
    elif getattr(sys, "_MEIPASS", None):
        roots = [Path(sys._MEIPASS) / "PySide6"]
    else:
        spec = importlib.util.find_spec("PySide6")
        roots = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    for root in roots:
        plugin = root / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.exists():
            return plugin
    return None


def missing_from_ldd(output: str) -> list[str]:
    """The libraries `ldd` could not find ("libxcb-cursor.so.0 => not found")."""
    return list(dict.fromkeys(NOT_FOUND.findall(output)))


def missing_by_name(find: Callable[[str], str | None] = ctypes.util.find_library) -> list[str]:
    """The listed libraries the dynamic loader's cache does not have (before PySide6 is installed)."""
    return [so for so in LIBRARIES if not find(so.removeprefix("lib").split(".so")[0])]


def probe(plugin: Path | None) -> list[str]:
    """The missing libraries: what `ldd` says the plugin lacks, or, without the plugin or ldd, the list by name."""
    ldd = shutil.which("ldd")
    if plugin is not None and ldd:
        result = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=30)
        return missing_from_ldd(result.stdout + result.stderr)
    return missing_by_name()


def install_advice(missing: list[str], program: str = "ponder") -> str:
    """What to tell the person: which libraries are missing and the one command that installs them."""
    known = [so for so in missing if so in LIBRARIES]
    debian = " ".join(dict.fromkeys(LIBRARIES[so][0] for so in known))
    fedora = " ".join(dict.fromkeys(LIBRARIES[so][1] for so in known))
    lines = [f"{program}: Qt cannot open a window: the system lacks {', '.join(missing)} "
             "(needed by Qt's X11 platform plugin)."]
    if known:
        lines += ["Install them with:",
                  f"  Debian/Ubuntu:  sudo apt-get install {debian}",
                  f"  Fedora:         sudo dnf install {fedora}"]
    unknown = [so for so in missing if so not in LIBRARIES]
    if unknown:
        lines.append(f"Your distribution's package search finds the package for {', '.join(unknown)} "
                     "(e.g. `apt-file search`, `dnf provides`).")
    lines.append("Meanwhile `ponder chat` works in a terminal.")
    return "\n".join(lines)


def check(plugin: Path | None, env: Mapping[str, str] = os.environ, program: str = "ponder") -> str | None:
    """The advice to print when Qt's xcb plugin (`plugin`; None: not installed yet) would fail to load; None when
    nothing is missing or X11 is not used."""
    if not uses_xcb(env):
        return None
    missing = probe(plugin)
    return install_advice(missing, program) if missing else None


if __name__ == "__main__":
    advice = check(xcb_plugin())
    print(advice or "Qt's X11 platform plugin has every library it needs.", file=sys.stderr if advice else sys.stdout)
    sys.exit(1 if advice else 0)
