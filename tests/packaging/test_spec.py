"""packaging/ponder.spec read by running it the way PyInstaller does, with PyInstaller's build classes replaced by
recorders: what each OS's build would get (versions, signing, entitlements, version resources, left-out files)."""
from __future__ import annotations

import sys
import types
from pathlib import Path

import engine.models.builtin  # noqa: F401  (the spec imports it: imported here, before sys.platform is changed)
from tests.packaging import ROOT, load_build

SPEC = ROOT / "packaging" / "ponder.spec"


class Recorder:
    made: list = []

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        Recorder.made.append(self)


class Analysis(Recorder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.binaries = [("libllama.so", "/x/libllama.so", "BINARY"), ("libgtk-3.so.0", "/x/libgtk-3.so.0", "BINARY")]
        self.datas = [("PySide6/Qt/translations/qtbase_de.qm", "/x/qtbase_de.qm", "DATA"),
                      ("PySide6/Qt/plugins/platforms/libqoffscreen.so", "/x/libqoffscreen.so", "DATA"),
                      ("resources/ponder.svg", "/x/ponder.svg", "DATA")]
        self.pure, self.scripts = [], []


IDENTITY = "Developer ID Application: Ponder (TEAMID)"


def run_spec(monkeypatch, platform: str, identity: str = IDENTITY,
             libs: tuple[str, ...] = ("libllama.so",)) -> dict[str, list[Recorder]]:
    Recorder.made = []
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_dynamic_libs = lambda package: [(f"/x/{package}/lib/{name}", f"{package}/lib") for name in libs]
    hooks.collect_data_files = lambda package, **_: []
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    # versioninfo (Windows) imports pefile and win32api, there on Windows only; the resource is built without them.
    import PyInstaller.compat

    monkeypatch.setitem(sys.modules, "pefile", sys.modules.get("pefile") or types.ModuleType("pefile"))
    monkeypatch.setattr(PyInstaller.compat, "win32api", getattr(PyInstaller.compat, "win32api", None), raising=False)
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setenv("PONDER_BUNDLE_MODEL", "0")
    monkeypatch.setenv("PONDER_CODESIGN_IDENTITY", identity)
    names = {"Analysis": Analysis}
    for name in ("PYZ", "EXE", "COLLECT", "BUNDLE"):
        names[name] = type(name, (Recorder,), {})
    exec(compile(SPEC.read_text(), str(SPEC), "exec"), {"SPECPATH": str(SPEC.parent), "__file__": str(SPEC), **names})
    made: dict[str, list[Recorder]] = {}
    for r in Recorder.made:
        made.setdefault(type(r).__name__, []).append(r)
    return made


def test_macos_app_says_its_real_minimum_and_version_and_is_signed_inside_out(monkeypatch):
    build = load_build()
    made = run_spec(monkeypatch, "darwin")
    (app,) = made["BUNDLE"]
    plist = app.kwargs["info_plist"]
    assert plist["LSMinimumSystemVersion"] == build.MACOS_MINIMUM == "14.0"
    assert plist["CFBundleShortVersionString"] == plist["CFBundleVersion"] == build.version()
    (exe,) = made["EXE"]  # COLLECT and BUNDLE take the identity from it and sign every binary, then the .app
    assert exe.kwargs["codesign_identity"] == IDENTITY
    assert Path(exe.kwargs["entitlements_file"]) == build.ENTITLEMENTS and build.ENTITLEMENTS.exists()


def test_macos_without_an_identity_is_signed_ad_hoc(monkeypatch):
    (exe,) = run_spec(monkeypatch, "darwin", identity="")["EXE"]
    assert exe.kwargs["codesign_identity"] is None and exe.kwargs["entitlements_file"]


def test_windows_gets_two_executables_with_version_resources(monkeypatch):
    build = load_build()
    made = run_spec(monkeypatch, "win32")
    exes = {e.kwargs["name"]: e for e in made["EXE"]}
    assert set(exes) == {"Ponder", "ponder-cli"} and "BUNDLE" not in made
    assert exes["ponder-cli"].kwargs["console"] and not exes["Ponder"].kwargs["console"]
    for name, exe in exes.items():
        text = str(exe.kwargs["version"])
        assert f"'OriginalFilename', '{name}.exe'" in text and f"'ProductVersion', '{build.version()}'" in text
        assert "codesign_identity" not in exe.kwargs


def test_linux_bundle_leaves_out_qt_translations_and_gtk(monkeypatch):
    made = run_spec(monkeypatch, "linux")
    (analysis,) = made["Analysis"]
    assert [d[0] for d in analysis.datas] == ["PySide6/Qt/plugins/platforms/libqoffscreen.so", "resources/ponder.svg"]
    assert [b[0] for b in analysis.binaries] == ["libllama.so"]
    (exe,) = made["EXE"]
    assert exe.kwargs["version"] is None and exe.kwargs["console"]
    assert "BUNDLE" not in made


VARIANTS = ("libllama.so", "libggml.so", "libggml-base.so.0", "libggml-cpu-x64.so", "libggml-cpu-haswell.so",
            "libggml-cpu-zen4.so", "libggml-cpu-sapphirerapids.so")
UNOPENED = ("libllama.so.0", "libllama.so.0.5.0", "libggml-base.so", "libmtmd.so")  # copies, and the image library


def test_the_cpu_variants_ship_except_the_amx_one(monkeypatch):
    (analysis,) = run_spec(monkeypatch, "linux", libs=VARIANTS + UNOPENED)["Analysis"]
    shipped = [Path(source).name for source, _dest in analysis.kwargs["binaries"]]
    assert shipped == [name for name in VARIANTS if "sapphirerapids" not in name]


def cuda_toolkit(root: Path) -> Path:
    for name in ("lib64/libcudart.so.12", "lib64/libcublas.so.12", "lib64/libcublasLt.so.12",
                 "bin/cudart64_12.dll", "bin/cublas64_12.dll", "bin/cublasLt64_12.dll"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    return root


def test_a_cuda_build_ships_nvidias_runtime_where_each_os_looks_for_it(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_PATH", str(cuda_toolkit(tmp_path)))
    (analysis,) = run_spec(monkeypatch, "linux", libs=(*VARIANTS, "libggml-cuda.so"))["Analysis"]
    runtime = [(Path(s).name, d) for s, d in analysis.kwargs["binaries"] if "cud" in s and "ggml" not in s]
    assert runtime == [("libcudart.so.12", "llama_cpp/lib"), ("libcublas.so.12", "llama_cpp/lib"),
                       ("libcublasLt.so.12", "llama_cpp/lib")]  # beside libggml-cuda.so, whose RPATH is $ORIGIN
    (analysis,) = run_spec(monkeypatch, "win32", libs=("llama.dll", "ggml-cuda.dll"))["Analysis"]
    runtime = [(Path(s).name, d) for s, d in analysis.kwargs["binaries"] if "cu" in Path(s).name and "ggml" not in s]
    assert runtime == [("cudart64_12.dll", "."), ("cublas64_12.dll", "."), ("cublasLt64_12.dll", ".")]


def test_a_cpu_build_ships_no_cuda_runtime(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_PATH", str(cuda_toolkit(tmp_path)))
    (analysis,) = run_spec(monkeypatch, "linux", libs=VARIANTS)["Analysis"]
    assert not [s for s, _d in analysis.kwargs["binaries"] if "cudart" in s]
