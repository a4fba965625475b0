"""The registry lists the built-in models (one the default), the models folder and imported files, and keeps
per-model formats."""
from __future__ import annotations

import shutil

import pytest

from engine import ModelError, Registry
from engine.paths import models_dir
from bench.synthetic import write_tiny_model


def test_lists_built_in_folder_and_imported(gemma_model, tmp_path):
    registry = Registry(tmp_path / "models.json")
    folder_copy = models_dir() / "folder-model.gguf"
    write_tiny_model(folder_copy)
    outside = write_tiny_model(tmp_path / "outside.gguf")
    broken = tmp_path / "broken.gguf"
    broken.write_text("not a model")
    registry.import_model(outside)
    with pytest.raises(ModelError):
        registry.import_model(broken)
    listed = registry.entries()
    assert [(e.name, e.source) for e in listed[:3]] == [("qwen2.5-coder-1.5b-instruct", "default"),
                                                        ("qwen2.5-coder-0.5b-instruct", "builtin"),
                                                        ("gemma-3-270m", "builtin")]
    assert all(e.is_loadable and e.description for e in listed[:3])
    entries = {e.name: e for e in listed}
    assert entries["gemma-3-270m"].info.architecture == "gemma3" and entries["gemma-3-270m"].path == str(gemma_model)
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


def test_built_in_names_resolve_to_their_files(gemma_model):
    registry = Registry()
    assert registry.resolve("gemma-3-270m") == gemma_model
    assert registry.resolve("gemma-3-270m-q4_k_m") == gemma_model  # the file's name, as listed before
    assert registry.resolve(str(gemma_model)) == gemma_model
    with pytest.raises(ModelError, match="built into Ponder"):
        registry.remove("gemma-3-270m")


def test_gemma_is_assembled_once_and_verified(gemma_model):
    from engine.models.builtin import GEMMA_3_270M, ensure_model

    mtime = gemma_model.stat().st_mtime_ns
    assert ensure_model(GEMMA_3_270M) == gemma_model
    assert gemma_model.stat().st_mtime_ns == mtime  # not rewritten
    assert gemma_model.stat().st_size == 253_113_024


def test_damaged_gemma_is_rebuilt_from_its_packages(gemma_model, tmp_path, monkeypatch):
    from engine.models.builtin import GEMMA_3_270M, _sha256, ensure_model

    # A home of its own: the session's loaded engine maps the real file, which must not change under it.
    monkeypatch.setenv("PONDER_HOME", str(tmp_path))
    target = models_dir() / gemma_model.name
    shutil.copyfile(gemma_model, target)
    with open(target, "r+b") as f:
        f.seek(10_000_000)
        f.write(b"\xff" * 16)
    assert ensure_model(GEMMA_3_270M) == target
    assert _sha256(target) == GEMMA_3_270M.sha256
