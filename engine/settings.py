"""User settings: one dataclass, saved atomically (temp file, then os.replace) under the config folder."""
from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from engine.errors import PonderError
from engine.paths import config_dir

log = logging.getLogger(__name__)
AUTO_GPU_LAYERS = -2  # "automatic" as the settings file keeps it: all layers when a GPU can take them, else none


def write_json_atomic(path: Path, data) -> None:
    """Write JSON so that a crash leaves either the old file or the new one, never half of one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    except OSError as e:
        raise PonderError(f"{path.name} could not be saved in {path.parent} ({e.strerror or e}). Make the folder "
                          "writable.") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _sweep_stale(path)
    except OSError as e:  # a full disk or a read-only folder: the old file is untouched
        Path(tmp).unlink(missing_ok=True)
        raise PonderError(f"{path.name} could not be saved in {path.parent} ({e.strerror or e}); the previous "
                          "version is kept. Free some space or make the folder writable.") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


STALE_TMP_S = 30  # a write takes milliseconds; a temp file this old was left by a process killed mid-write


def _sweep_stale(path: Path) -> None:
    """Remove temp files of `path` that a killed process left (never one a live writer may still be filling)."""
    now = time.time()
    for leftover in path.parent.glob(f"{glob.escape(path.name)}*.tmp"):
        try:
            if now - leftover.stat().st_mtime > STALE_TMP_S:
                leftover.unlink()
        except OSError:
            pass


def read_json(path: Path, default):
    """The file's JSON, or `default` when it is missing or unreadable; a damaged file is logged and kept beside
    it as NAME.damaged-TIME before anything can save over it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as e:
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            if isinstance(e, ValueError) and not aside.exists():
                shutil.copyfile(path, aside)
        except OSError:
            aside = None
        log.warning("%s is unreadable (%s); using defaults%s", path, e, f", a copy is kept at {aside}" if aside else "")
        return default


@dataclass(slots=True)
class Settings:
    model: str = ""  # empty: the default model
    n_ctx: int = 4096
    n_threads: int = 0  # 0: physical cores
    n_gpu_layers: int = AUTO_GPU_LAYERS  # or a count; -1: every layer
    temperature: float = 0.7
    max_tokens: int = 1024
    system_prompt: str = ""
    # Speculative decoding (prompt lookup) where it pays; the answers are the same either way. Off until
    # `ponder bench --only spec_documents,spec_prose` shows the gain on the default model (README, Speed).
    speculate: bool = False
    # With speculate on, a smaller model of the same vocabulary drafts instead of prompt lookup where the costs
    # measured on this machine say it pays (it is not even loaded where it cannot); "" none. Settings file only.
    draft_model: str = ""
    whole_collection_s: int = 30  # send a collection whole only if the model reads it within this time (0: if it fits)
    remote: str = ""  # the URL of a saved OpenAI-compatible server to answer with instead of a local model

    @classmethod
    def load(cls, path: Path | None = None) -> "Settings":
        data = read_json(path or config_dir() / "settings.json", {})
        if not isinstance(data, dict):
            return cls()
        kept = {}
        for f in fields(cls):
            if f.name in data:
                value, default = data[f.name], f.default
                if type(value) is type(default) or (type(default) is float and type(value) is int):
                    kept[f.name] = value
                else:  # hand-edited or damaged: that one setting falls back, the rest are kept
                    log.warning("settings: %s is %r, not a %s; using %r", f.name, value, type(default).__name__,
                                default)
        return cls(**kept)

    @property
    def gpu_layers(self) -> int | None:
        """n_gpu_layers as LoadSettings takes it: None for automatic."""
        return None if self.n_gpu_layers == AUTO_GPU_LAYERS else self.n_gpu_layers

    def save(self, path: Path | None = None) -> None:
        write_json_atomic(path or config_dir() / "settings.json", asdict(self))
