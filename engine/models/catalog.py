"""The curated list of downloadable models (resources/catalog.json) and whether each fits this computer."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from engine.errors import ModelError


def _catalog_path() -> Path:
    bundle = getattr(sys, "_MEIPASS", None)  # the same file frozen (PyInstaller) and from a checkout
    base = Path(bundle) if bundle else Path(__file__).resolve().parents[2]
    return base / "resources" / "catalog.json"


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    name: str
    kind: str  # chat, reasoning, embedding
    repo: str
    file: str
    size_mb: int
    quantization: str
    licence: str
    thinking: str
    min_ram_gb: float

    @property
    def ref(self) -> str:
        """What `ponder models pull` takes: REPO/FILE."""
        return f"{self.repo}/{self.file}"

    def fits(self, ram_bytes: int | None = None, vram_bytes: int | None = None) -> tuple[bool, str]:
        """Whether it runs here, and a sentence saying why (or why not). By default: this computer's memory and,
        when the llama.cpp build can offload, its largest GPU's."""
        ram = psutil.virtual_memory().total if ram_bytes is None else ram_bytes
        if vram_bytes is None:
            from engine.runtime.backend import detect_backend, gpu_memory

            vram_bytes = gpu_memory() if detect_backend().gpu_offload else 0
        need = self.min_ram_gb * 1e9
        if vram_bytes:
            where = "GPU memory" if vram_bytes >= need else "memory (too big for the GPU, runs on the CPU)"
            if vram_bytes >= need or ram >= need:
                return True, f"fits: needs about {self.min_ram_gb:g} GB of {where}"
        if ram >= need:
            return True, f"fits: needs about {self.min_ram_gb:g} GB, this computer has {ram / 1e9:.0f} GB"
        return False, f"too big: needs about {self.min_ram_gb:g} GB, this computer has {ram / 1e9:.0f} GB"


def load_catalog(path: Path | None = None) -> list[CatalogEntry]:
    path = path or _catalog_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [CatalogEntry(**m) for m in data["models"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"The model catalog {path} cannot be read ({e}).") from None
