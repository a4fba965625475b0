"""Before the window: the system libraries Qt's X11 plugin needs, and the install line when some are missing."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from app import system_libs
from app.system_libs import LIBRARIES, check, install_advice, missing_by_name, missing_from_ldd, probe, uses_xcb
from tests.packaging import load_dev

LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffd5a1f2000)
\tlibxkbcommon-x11.so.0 => not found
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => /lib/x86_64-linux-gnu/libxcb-icccm.so.4 (0x00007f0e1c1e0000)
\tlibxcb-cursor.so.0 => not found
"""


def test_ldd_not_found_lines_are_the_missing_libraries():
    assert missing_from_ldd(LDD_OUTPUT) == ["libxkbcommon-x11.so.0", "libxcb-cursor.so.0"]
    assert missing_from_ldd("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n") == []


def test_the_advice_is_one_install_command_per_distribution_family():
    advice = install_advice(["libxcb-cursor.so.0", "libxkbcommon-x11.so.0", "libxcb-shape.so.0"])
    assert "libxcb-cursor.so.0, libxkbcommon-x11.so.0, libxcb-shape.so.0" in advice
    assert "sudo apt-get install libxcb-cursor0 libxkbcommon-x11-0 libxcb-shape0\n" in advice
    assert "sudo dnf install xcb-util-cursor libxkbcommon-x11 libxcb\n" in advice
    assert "ponder chat" in advice


def test_a_library_not_in_the_table_is_still_named():
    advice = install_advice(["libxcb-cursor.so.0", "libfuture.so.9"])
    assert "libfuture.so.9" in advice and "apt-get install libxcb-cursor0\n" in advice


def test_the_table_covers_what_the_deb_declares():
    from tests.packaging import ROOT

    control = (ROOT / "packaging" / "linux" / "control").read_text()
    depends = {d.strip().split(" ")[0] for d in control.split("Depends:")[1].splitlines()[0].split(",")}
    debian_names = {deb for deb, _fedora in LIBRARIES.values()}
    assert depends - {"libc6"} <= debian_names


def test_missing_by_name_asks_the_loader_for_each_listed_library():
    asked = []

    def find(name):
        asked.append(name)
        return None if name in ("xcb-cursor", "xkbcommon-x11") else f"lib{name}.so"
    assert missing_by_name(find) == ["libxcb-cursor.so.0", "libxkbcommon-x11.so.0"]
    assert "X11-xcb" in asked and "glib-2.0" in asked


@pytest.mark.parametrize("env, platform, expected", [
    ({"DISPLAY": ":0"}, "linux", True),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux", False),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, "linux", True),
    ({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, "linux", False),
    ({}, "darwin", False),
    ({}, "win32", False),
])
def test_only_x11_on_linux_is_checked(env, platform, expected):
    assert uses_xcb(env, platform) is expected


@pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("ldd"), reason="Linux with ldd")
def test_the_real_plugin_is_probed_as_the_loader_sees_it():
    """Qt's real xcb plugin on this machine, whatever it has installed: what ldd finds missing the loader cannot
    find by name either, and the advice comes exactly when something is missing, naming each library."""
    plugin = system_libs.xcb_plugin()
    assert plugin is not None and plugin.name == "libqxcb.so"
    missing = probe(plugin)
    assert {so for so in missing if so in LIBRARIES} <= set(missing_by_name())
    advice = check(plugin, env={"DISPLAY": ":0"})
    assert (advice is None) == (missing == [])
    assert advice is None or all(so in advice for so in missing)


@pytest.mark.skipif(not sys.platform.startswith("linux") or not (shutil.which("ldd") and shutil.which("cc")),
                    reason="Linux with ldd and a C compiler")
def test_a_plugin_linking_a_library_this_machine_lacks_is_reported_by_the_real_ldd(tmp_path):
    """A real shared object whose DT_NEEDED names a library that is not installed: what a fresh Debian's
    libqxcb.so looks like to ldd."""
    (tmp_path / "a.c").write_text("int ponder_stub(void) { return 0; }\n")
    (tmp_path / "b.c").write_text("int ponder_stub(void); int plugin(void) { return ponder_stub(); }\n")
    stub = tmp_path / "libxcb-ponder-absent.so.0"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", stub, tmp_path / "a.c", "-Wl,-soname,libxcb-ponder-absent.so.0"],
                   check=True)
    plugin = tmp_path / "libqxcb.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", plugin, tmp_path / "b.c", stub], check=True)
    stub.unlink()
    advice = check(plugin, env={"DISPLAY": ":0"})
    assert advice is not None and "libxcb-ponder-absent.so.0" in advice


def test_dev_py_run_prints_the_advice_and_stops_before_set_up(monkeypatch, capsys):
    dev = load_dev()
    monkeypatch.setattr(dev, "system_advice", lambda: install_advice(["libxcb-cursor.so.0"], "dev.py run"))
    monkeypatch.setattr(dev, "ensure_environment", lambda: pytest.fail("set-up ran although the window cannot open"))
    assert dev.main(["run"]) == 3
    assert "sudo apt-get install libxcb-cursor0" in capsys.readouterr().err


def test_ponder_prints_the_advice_instead_of_opening_the_window(monkeypatch, capsys):
    from app import gui

    monkeypatch.setattr(gui, "has_display", lambda: True)
    monkeypatch.setattr(system_libs, "check", lambda plugin: install_advice(["libxcb-icccm.so.4"]))
    monkeypatch.setattr(gui, "application", lambda: pytest.fail("Qt started although a library is missing"))
    assert gui.run_app() == 3
    assert "sudo dnf install xcb-util-wm" in capsys.readouterr().err
