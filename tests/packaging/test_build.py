"""packaging/build.py's pure parts, run on any OS: re-launching under the project's environment, artifact names,
the Mach-O minimum-macOS reader, the Windows version resource."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.packaging import load_build

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def build():
    return load_build()


@contextmanager
def on_windows():
    """The Windows branch: os.name and sys.platform as CPython sets them there (only around the call: pathlib
    would build WindowsPaths), and os.execv forbidden (on Windows it spawns the new process and the caller exits 0
    at once, CPython issue 101191)."""
    saved = os.name, sys.platform, os.execv

    def execv(*_args):
        raise AssertionError("os.execv must not be used to re-launch the build")

    os.name, sys.platform, os.execv = "nt", "win32", execv
    try:
        yield
    finally:
        os.name, sys.platform, os.execv = saved


@pytest.mark.parametrize("code", [0, 3])
def test_relaunch_waits_for_the_child_and_leaves_with_its_exit_code(build, tmp_path, code):
    marker = tmp_path / "ran"
    child = f"import pathlib, sys, time; time.sleep(0.3); pathlib.Path({str(marker)!r}).write_text('yes'); sys.exit({code})"
    python = Path(sys.executable)
    with pytest.raises(SystemExit) as leaving, on_windows():
        build.relaunch(python, ["-c", child])
    assert leaving.value.code == code
    assert marker.read_text() == "yes"  # the child had finished when relaunch left


def test_in_project_env_on_windows_runs_the_venvs_python_exe_and_returns_its_failure(build, tmp_path,
                                                                                  monkeypatch):
    venv = tmp_path / "venv"
    (venv / "Scripts").mkdir(parents=True)
    python = venv / "Scripts" / "python.exe"  # the path dev.py's venv has on Windows; here, a wrapper
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    ran = []
    real_run = subprocess.run

    def run(cmd, **kwargs):
        if str(ROOT / "dev.py") in map(str, cmd):
            ran.append(cmd)  # `dev.py setup`: the environment is already there
            return subprocess.CompletedProcess(cmd, 0)
        return real_run(cmd, **kwargs)

    monkeypatch.setattr(build, "has_build_tools", lambda: False)
    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(sys, "argv", ["-c", "import sys; sys.exit(7)"])
    with pytest.raises(SystemExit) as leaving, on_windows():
        build.in_project_env(venv)
    assert ran and ran[0][-1] == "setup"
    assert leaving.value.code == 7  # a failed build fails the step; it does not exit 0 early


def test_in_project_env_does_nothing_when_the_tools_are_here(build, monkeypatch):
    monkeypatch.setattr(build, "has_build_tools", lambda: True)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("nothing to set up"))
    build.in_project_env()


def test_in_project_env_stops_with_a_message_when_the_venv_itself_lacks_pyinstaller(build, tmp_path, monkeypatch):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    os.symlink(sys.executable, venv / "bin" / "python")
    monkeypatch.setattr(build, "has_build_tools", lambda: False)
    with pytest.raises(SystemExit, match="dev.py setup"):
        build.in_project_env(venv)


# -- macOS: the minimum system version each Mach-O binary in the bundle declares --------------------------------

def macho(minos: tuple[int, int, int] | None, *, old_style: bool = False, bits: int = 64) -> bytes:
    """A thin little-endian Mach-O header with an LC_SEGMENT-sized filler command, then the version command."""
    commands = struct.pack("<II", 0x19, 72) + bytes(64)  # a command to step over
    if minos:
        encoded = minos[0] << 16 | minos[1] << 8 | minos[2]
        if old_style:
            commands += struct.pack("<IIII", 0x24, 16, encoded, encoded)
        else:
            commands += struct.pack("<IIIIII", 0x32, 24, 1, encoded, encoded, 0)
    ncmds = 2 if minos else 1
    magic = 0xFEEDFACF if bits == 64 else 0xFEEDFACE
    header = struct.pack("<IiiIIII", magic, 0x0100000C, 0, 6, ncmds, len(commands), 0)
    return header + (struct.pack("<I", 0) if bits == 64 else b"") + commands


def fat(*slices: bytes) -> bytes:
    """A universal binary: big-endian fat header, one fat_arch per slice, slices at 4 KiB boundaries."""
    out = bytearray(struct.pack(">II", 0xCAFEBABE, len(slices)))
    offset = 4096
    table, body = bytearray(), bytearray()
    for data in slices:
        table += struct.pack(">IIIII", 0x0100000C, 0, offset + len(body), len(data), 12)
        body += data + bytes(-len(data) % 4096)
    out += table
    return bytes(out) + bytes(offset - len(out)) + bytes(body)


@pytest.mark.parametrize("data, expected", [
    (macho((14, 0, 0)), (14, 0, 0)),
    (macho((13, 3, 1)), (13, 3, 1)),
    (macho((11, 0, 0), old_style=True), (11, 0, 0)),
    (macho((10, 13, 0), bits=32), (10, 13, 0)),
    (macho(None), None),
    (fat(macho((11, 0, 0)), macho((14, 2, 0))), (14, 2, 0)),  # the newest slice decides
    (b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + bytes(64), None),  # a Java class file, same magic
    (b"#!/bin/sh\n", None),
    (b"", None),
])
def test_macho_min_macos(build, tmp_path, data, expected):
    path = tmp_path / "binary"
    path.write_bytes(data)
    assert build.macho_min_macos(path) == expected


def test_newer_than_names_the_binaries_an_older_macos_could_not_load(build, tmp_path):
    app = tmp_path / "Ponder.app" / "Contents"
    (app / "Frameworks" / "numpy").mkdir(parents=True)
    (app / "MacOS").mkdir()
    (app / "MacOS" / "Ponder").write_bytes(macho((11, 0, 0)))
    (app / "Frameworks" / "numpy" / "_core.so").write_bytes(macho((14, 0, 0)))
    (app / "Frameworks" / "libllama.dylib").write_bytes(fat(macho((13, 0, 0)), macho((15, 1, 0))))
    (app / "Info.plist").write_text("<plist/>")
    os.symlink("libllama.dylib", app / "Frameworks" / "libllama.0.dylib")  # counted once, not through links
    assert build.newer_than(tmp_path / "Ponder.app", "14.0") == ["Contents/Frameworks/libllama.dylib (needs 15.1)"]
    assert build.newer_than(tmp_path / "Ponder.app", "15.1") == []
    assert len(build.newer_than(tmp_path / "Ponder.app", "12.0")) == 2


# -- signing configuration, names, Inno Setup, the version resource ----------------------------------------------

def test_missing_signing_lists_what_each_os_needs(build):
    assert build.missing_signing("darwin", {}) == list(build.SIGNING_VARIABLES["darwin"])
    full = {name: "x" for name in build.SIGNING_VARIABLES["darwin"]}
    assert build.missing_signing("darwin", full) == []
    assert build.missing_signing("darwin", {**full, "PONDER_NOTARY_ISSUER": ""}) == ["PONDER_NOTARY_ISSUER"]
    assert build.missing_signing("win32", {"PONDER_WINDOWS_CERT": "c.pfx"}) == ["PONDER_WINDOWS_CERT_PASSWORD"]
    assert build.missing_signing("linux", {}) == []


def test_require_signing_fails_before_building(build, monkeypatch):
    for name in build.SIGNING_VARIABLES["darwin"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(sys, "argv", ["build.py", "--require-signing"])
    monkeypatch.setattr(build, "in_project_env", lambda: pytest.fail("must stop before building"))
    with pytest.raises(SystemExit, match="PONDER_CODESIGN_IDENTITY, PONDER_NOTARY_KEY, .* are not set"):
        build.main()
    monkeypatch.setenv("PONDER_REQUIRE_SIGNING", "1")  # the workflow's way of saying it
    monkeypatch.setattr(sys, "argv", ["build.py"])
    with pytest.raises(SystemExit, match="signing is required"):
        build.main()


def test_artifact_names_say_version_os_and_architecture(build):
    assert build.dmg_name("1.2.3", "arm64") == "Ponder-1.2.3-macos-arm64.dmg"
    assert build.tarball_name("1.2.3", "x86_64") == "Ponder-1.2.3-linux-x86_64.tar.gz"
    assert build.deb_name("1.2.3", "amd64") == "ponder_1.2.3_amd64.deb"
    assert build.windows_installer() == build.WINDOWS_INSTALLER == "PonderSetup.exe"


def test_the_cuda_installers_say_cuda(build):
    assert build.tarball_name("1.2.3", "x86_64", build.CUDA) == "Ponder-1.2.3-linux-x86_64-cuda.tar.gz"
    assert build.deb_name("1.2.3", "amd64", build.CUDA) == "ponder-cuda_1.2.3_amd64.deb"
    assert build.windows_installer(build.CUDA) == "PonderSetup-cuda.exe"
    assert build.iscc_args("iscc", "1.2.3", installer="PonderSetup-cuda.exe")[4] == "/FPonderSetup-cuda"
    assert "/FPonderSetup" in build.iscc_args("iscc", "1.2.3")


def test_the_cuda_deb_is_its_own_package_that_takes_the_cpu_ones_place(build):
    cpu = build.deb_control("1.2.3", "amd64", 1000)
    assert cpu.startswith("Package: ponder\nVersion: 1.2.3\n") and "Conflicts" not in cpu
    cuda = build.deb_control("1.2.3", "amd64", 1000, build.CUDA)
    assert cuda.startswith("Package: ponder-cuda\nConflicts: ponder\nReplaces: ponder\nProvides: ponder\n"
                           "Version: 1.2.3\n")
    assert "\n\n" not in cuda.strip()  # one paragraph: a blank line would end the package's fields


@pytest.mark.parametrize("name, cuda", [("libggml-cuda.so", True), ("ggml-cuda.dll", True), ("libggml-cpu.so", False),
                                        ("libggml-cuda-helper.txt", False), ("libggml.so", False)])
def test_a_cuda_build_is_known_by_its_backend_library(build, name, cuda):
    assert build.is_cuda_library(name) is cuda


@pytest.mark.parametrize("name, variant", [("libggml-cpu-haswell.so", "haswell"), ("ggml-cpu-x64.dll", "x64"),
                                           ("libggml-cpu-sapphirerapids.so", "sapphirerapids"),
                                           ("libggml-cpu.so", None), ("libggml-cpu.so.0", None)])
def test_cpu_variant_names_from_library_files(build, name, variant):
    assert build.cpu_variant_name(name) == variant


@pytest.mark.parametrize("name, system, unneeded", [
    ("libllama.so", "linux", False), ("libggml.so", "linux", False), ("libggml.so.0", "linux", False),
    ("libggml-base.so.0", "linux", False), ("libggml-cpu-zen4.so", "linux", False), ("libggml-cuda.so", "linux", False),
    ("libllama.so.0", "linux", True), ("libllama.so.0.5.0", "linux", True), ("libggml-base.so.0.25.3", "linux", True),
    ("libggml-base.so", "linux", True), ("libmtmd.so", "linux", True), ("libmtmd.so.0", "linux", True),
    ("mtmd.dll", "win32", True), ("libmtmd.dylib", "darwin", True), ("llama.dll", "win32", False),
    ("libllama.0.dylib", "darwin", False), ("libggml-base.dylib", "darwin", False)])
def test_library_copies_nothing_opens_are_left_out(build, name, system, unneeded):
    assert build.unneeded_llama_library(name, system) is unneeded


def test_what_the_bundle_keeps_is_what_the_loader_needs(build):
    """Every library the installed llama.cpp's kept libraries link (ELF NEEDED, read with objdump) is kept too."""
    import shutil

    import llama_cpp

    if not sys.platform.startswith("linux") or shutil.which("objdump") is None:
        pytest.skip("Linux with objdump")
    lib = Path(llama_cpp.__file__).parent / "lib"
    kept = {p.name for p in lib.iterdir() if not build.unneeded_llama_library(p.name, "linux")}
    assert {"libllama.so", "libggml.so"} <= kept  # what llama_cpp opens by name
    for name in kept:
        dump = subprocess.run(["objdump", "-p", str(lib / name)], capture_output=True, text=True).stdout
        needed = {line.split()[1] for line in dump.splitlines() if line.strip().startswith("NEEDED")}
        ours = {n for n in needed if (lib / n).exists()}
        assert ours <= kept, f"{name} links {ours - kept}, which the bundle would leave out"


def toolkit(root: Path, files: list[str]) -> Path:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    return root


def test_cuda_runtime_libraries_by_the_names_the_loader_asks_for(build, tmp_path):
    linux = toolkit(tmp_path / "linux", ["lib64/libcudart.so.12", "lib64/libcudart.so.12.6.77", "lib64/libcudart.so",
                                         "lib64/libcublas.so.12", "lib64/libcublasLt.so.12",
                                         "lib64/libcublasLt_static.a"])
    assert [p.name for p in build.cuda_runtime_libraries(linux, "linux")] == [
        "libcudart.so.12", "libcublas.so.12", "libcublasLt.so.12"]
    windows = toolkit(tmp_path / "windows", ["bin/cudart64_12.dll", "bin/cublas64_12.dll", "bin/cublasLt64_12.dll",
                                             "bin/nvcc.exe"])
    assert [p.name for p in build.cuda_runtime_libraries(windows, "win32")] == [
        "cudart64_12.dll", "cublas64_12.dll", "cublasLt64_12.dll"]
    cuda13 = toolkit(tmp_path / "cuda13", ["bin/x64/cudart64_13.dll", "bin/x64/cublas64_13.dll",
                                           "bin/x64/cublasLt64_13.dll"])
    assert len(build.cuda_runtime_libraries(cuda13, "win32")) == 3


def test_a_cuda_build_without_the_runtime_fails_naming_what_is_missing(build, tmp_path):
    partial = toolkit(tmp_path, ["lib64/libcudart.so.12"])
    with pytest.raises(SystemExit, match="cublas, cublasLt are not in the CUDA toolkit at"):
        build.cuda_runtime_libraries(partial, "linux")


def test_iscc_signs_through_the_scripts_sign_tool_only_with_a_certificate(build):
    plain = build.iscc_args("iscc", "1.2.3")
    assert "/DSign" not in plain and not any(a.startswith("/S") for a in plain)
    assert "/DAppVersion=1.2.3" in plain and plain[-1] == str(build.ISS)
    signed = build.iscc_args("iscc", "1.2.3", r"C:\Kits\signtool.exe", r"C:\t\ponder.pfx", "pw")
    sign = next(a for a in signed if a.startswith("/Sponder="))
    assert "/DSign" in signed
    assert sign == (r"/Sponder=$qC:\Kits\signtool.exe$q sign /f $qC:\t\ponder.pfx$q /p $qpw$q /fd sha256 "
                    f"/tr {build.TIMESTAMP_URL} /td sha256 $f")


def test_the_inno_script_declares_what_build_py_passes_and_replaces_internal_on_upgrade(build):
    iss = build.ISS.read_text()
    for define in ("AppVersion", "SourceDir"):
        assert f"#ifndef {define}" in iss and "{#" + define + "}" in iss
    assert "#ifdef Sign\nSignTool=ponder\n" in iss  # the name build.py's /Sponder=... defines
    assert "OutputBaseFilename=" + build.WINDOWS_INSTALLER.removesuffix(".exe") in iss
    install_delete = iss.split("[InstallDelete]", 1)[1].split("\n[", 1)[0]
    assert 'Type: filesandordirs; Name: "{app}\\_internal"' in install_delete
    assert 'Name: "addtopath"' in iss and "WizardIsTaskSelected('addtopath')" in iss
    assert "ChangesEnvironment=yes" in iss and "RemoveFromPath(ExpandConstant('{app}'))" in iss


def test_windows_version_resource_says_the_version_and_the_file(build, monkeypatch):
    # PyInstaller's versioninfo imports pefile and win32api (there on Windows only) for reading and writing
    # executables; building the resource's text and bytes uses neither.
    import PyInstaller.compat

    monkeypatch.setitem(sys.modules, "pefile", sys.modules.get("pefile") or types.ModuleType("pefile"))
    monkeypatch.setattr(PyInstaller.compat, "win32api", getattr(PyInstaller.compat, "win32api", None), raising=False)
    info = build.windows_version_info("1.2.3", "ponder-cli", "Ponder command line")
    text = str(info)  # the form PyInstaller's version files have
    assert "filevers=(1, 2, 3, 0)" in text and "prodvers=(1, 2, 3, 0)" in text
    for expected in ("'OriginalFilename', 'ponder-cli.exe'", "'FileDescription', 'Ponder command line'",
                     "'ProductVersion', '1.2.3'"):
        assert expected in text
    ffi = info.ffi  # VS_FIXEDFILEINFO: the numbers Explorer shows as "File version"
    assert (ffi.fileVersionMS, ffi.fileVersionLS) == (ffi.productVersionMS, ffi.productVersionLS) == (1 << 16 | 2,
                                                                                                    3 << 16)
    assert "ponder-cli.exe".encode("utf-16-le") in info.toRaw()


@pytest.mark.parametrize("dest, expected", [
    ("PySide6/Qt/translations/qtbase_de.qm", True),
    ("PySide6/translations/qtbase_de.qm", True),  # the Windows wheel's layout
    ("PySide6/Qt/plugins/platforms/libqoffscreen.so", False),
    ("resources/translations.txt", False),
])
def test_qt_translations_are_left_out(build, dest, expected):
    assert build.is_qt_translation(dest) is expected


def test_the_entitlements_allow_ctypes_callbacks_and_nothing_else(build):
    import plistlib

    entitlements = plistlib.loads(build.ENTITLEMENTS.read_bytes())
    assert entitlements == {"com.apple.security.cs.allow-unsigned-executable-memory": True}


def test_pyinstaller_and_its_hooks_are_pinned():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    pins = {r.split("==")[0]: r.split("==")[1] for r in extras if "==" in r}
    assert {"pyinstaller", "pyinstaller-hooks-contrib"} <= set(pins)
    from importlib.metadata import version

    assert version("pyinstaller") == pins["pyinstaller"]  # the set-up installs what the pin says
