"""Every bad file becomes a ModelError with a sentence, and llama.cpp never gets to see it."""
from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from engine import ModelError, inspect_model
from engine.models.gguf_header import read_header
from engine.runtime.session import LoadSettings, ModelSession
from bench.synthetic import write_tiny_model


def load(path: Path) -> None:
    ModelSession.load(path, LoadSettings(n_ctx=256)).close()


def truncated(src: Path, dst: Path, size: int) -> Path:
    with open(src, "rb") as f, open(dst, "wb") as out:
        remaining = size
        while remaining:
            block = f.read(min(remaining, 1 << 22))
            out.write(block)
            remaining -= len(block)
    return dst


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="no model file"):
        load(tmp_path / "nope.gguf")


def test_folder(tmp_path):
    with pytest.raises(ModelError, match="is a folder"):
        load(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.gguf").write_bytes(b"")
    with pytest.raises(ModelError, match="empty"):
        load(tmp_path / "empty.gguf")


def test_random_bytes(tmp_path):
    path = tmp_path / "random.gguf"
    path.write_bytes(os.urandom(100_000))
    with pytest.raises(ModelError, match="not a GGUF model"):
        load(path)


def test_text_file_renamed(tmp_path):
    path = tmp_path / "notes.gguf"
    path.write_text("These are my notes, not a model.\n" * 50)
    with pytest.raises(ModelError, match="text file"):
        load(path)


def test_html_error_page_saved_as_model(tmp_path):
    path = tmp_path / "download.gguf"
    path.write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>")
    with pytest.raises(ModelError, match="web page"):
        load(path)


def test_magic_only_with_absurd_counts(tmp_path):
    path = tmp_path / "absurd.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**60, 2**60) + b"\0" * 64)
    with pytest.raises(ModelError, match="damaged"):
        load(path)


def test_unsupported_version(tmp_path):
    path = tmp_path / "v9.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 9, 0, 0))
    with pytest.raises(ModelError, match="version 9"):
        load(path)


@pytest.mark.parametrize("where", ["metadata", "vocabulary", "tensor table", "first tensor", "last byte"])
def test_gemma_model_truncated(gemma_model, tmp_path, where):
    header = read_header(gemma_model)
    vocab = header.metadata["tokenizer.ggml.scores"].offset  # the arrays sit together in the metadata
    size = {"metadata": 300, "vocabulary": vocab - 50_000, "tensor table": header.data_offset - 2_000,
            "first tensor": header.data_offset + 100, "last byte": header.file_size - 1}[where]
    path = truncated(gemma_model, tmp_path / "cut.gguf", size)
    with pytest.raises(ModelError) as info:
        load(path)
    message = str(info.value)
    assert "damaged" in message or "incomplete" in message
    if where in ("first tensor", "last byte"):
        assert "253 MB" in message  # says how big the complete file must be


def test_tiny_model_truncated_everywhere(tiny_model, tmp_path):
    size = tiny_model.stat().st_size
    for cut in range(8, size, max(1, size // 40)):
        path = truncated(tiny_model, tmp_path / f"cut{cut}.gguf", cut)
        with pytest.raises(ModelError):
            inspect_model(path)


def test_tensor_offset_past_end(tmp_path):
    path = write_tiny_model(tmp_path / "offsets.gguf")
    data = bytearray(path.read_bytes())
    name = b"blk.1.ffn_down.weight"
    at = data.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
    n_dims = struct.unpack_from("<I", data, at)[0]
    offset_at = at + 4 + 8 * n_dims + 4
    struct.pack_into("<Q", data, offset_at, 10**9)
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="incomplete"):
        load(path)


def test_unknown_architecture_is_reported_not_crashed(tmp_path):
    path = write_tiny_model(tmp_path / "alien.gguf", architecture="notanarch")
    with pytest.raises(ModelError, match="'notanarch' architecture"):
        load(path)


def test_embedding_model_cannot_chat(tmp_path):
    path = write_tiny_model(tmp_path / "bert.gguf", architecture="bert")
    with pytest.raises(ModelError, match="embedding model"):
        load(path)


def test_model_info_of_gemma_model(gemma_model):
    info = inspect_model(gemma_model)
    assert (info.architecture, info.quantization, info.context_length) == ("gemma3", "Q4_K_M", 32768)
    assert info.parameters == 268_098_176
    assert not info.has_template and info.thinking_format == "none"
    assert info.file_size == 253_113_024 and info.sliding_window == 512


def test_header_reader_keeps_vocabulary_out_of_memory(gemma_model):
    from engine.models.gguf_header import ArrayRef, read_string_array

    header = read_header(gemma_model)
    tokens = header.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, ArrayRef) and tokens.count == 262_144
    vocab = read_string_array(gemma_model, tokens)
    assert vocab[2] == "<bos>" and len(vocab) == 262_144


def test_not_enough_memory(tiny_model, monkeypatch):
    import engine.runtime.session as session

    class Tiny:
        available = 1000

    monkeypatch.setattr(session.psutil, "virtual_memory", lambda: Tiny)
    with pytest.raises(ModelError, match="memory"):
        load(tiny_model)
