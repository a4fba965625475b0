"""The catalog is data (resources/catalog.json) and says whether each model fits a computer."""
from __future__ import annotations

import json
import subprocess
import sys

from engine.models.catalog import load_catalog


def test_the_catalog_lists_chat_reasoning_and_embedding_models():
    entries = load_catalog()
    kinds = {e.kind for e in entries}
    assert kinds == {"chat", "reasoning", "embedding"}
    assert all(e.file.endswith(".gguf") and e.repo.count("/") == 1 and e.size_mb > 0 for e in entries)
    assert {"think-tags", "harmony", "none"} <= {e.thinking for e in entries}


def test_fits_compares_with_memory():
    qwen8 = next(e for e in load_catalog() if e.name == "Qwen3 8B")
    assert qwen8.fits(ram_bytes=16 * 10**9)[0]
    ok, why = qwen8.fits(ram_bytes=4 * 10**9)
    assert not ok and "needs about 6.5 GB" in why and "has 4 GB" in why
    assert qwen8.fits(ram_bytes=4 * 10**9, vram_bytes=8 * 10**9) == (True, "fits: needs about 6.5 GB of GPU memory")


def test_cli_catalog_json(ponder_home):
    out = subprocess.run([sys.executable, "-m", "app.main", "models", "catalog", "--json"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert rows[0]["ref"] == f"{rows[0]['repo']}/{rows[0]['file']}" and isinstance(rows[0]["fits"], bool)
