"""User settings: one dataclass, saved atomically (temp file, then os.replace) under the config folder."""
from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from engine.paths import config_dir

log = logging.getLogger(__name__)
AUTO_GPU_LAYERS = -2  # "automatic" as the settings file keeps it: all layers when a GPU can take them, else none


def write_json_atomic(path: Path, data) -> None:
    """Write JSON so that a crash leaves either the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path, default):
    """The file's JSON, or `default` when it is missing or unreadable (a damaged file is logged and kept)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable %s: %s", path, e)
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
    whole_collection_s: int = 30  # send a collection whole only if the model reads it within this time (0: if it fits)
    remote: str = ""  # the URL of a saved OpenAI-compatible server to answer with instead of a local model

    @classmethod
    def load(cls, path: Path | None = None) -> "Settings":
        data = read_json(path or config_dir() / "settings.json", {})
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known}) if isinstance(data, dict) else cls()

    @property
    def gpu_layers(self) -> int | None:
        """n_gpu_layers as LoadSettings takes it: None for automatic."""
        return None if self.n_gpu_layers == AUTO_GPU_LAYERS else self.n_gpu_layers

    def save(self, path: Path | None = None) -> None:
        write_json_atomic(path or config_dir() / "settings.json", asdict(self))
