"""What a GGUF file is, and whether it can be loaded, decided before llama.cpp ever sees it.

llama.cpp can abort the whole process on a damaged file, so every structural
check it would trip over is made here first and reported as a ModelError.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import gguf

from engine.budget.formats import detect_format
from engine.errors import ModelError
from engine.models.gguf_header import Header, HeaderError, read_header

KNOWN_ARCHITECTURES = frozenset(gguf.MODEL_ARCH_NAMES.values())
EMBEDDING_ARCHITECTURES = frozenset({"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "modern-bert", "t5encoder"})


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Facts about a model file, read from its header without loading weights."""

    path: str
    name: str
    architecture: str
    parameters: int
    quantization: str
    context_length: int
    file_size: int
    has_template: bool
    chat_template: str
    thinking_format: str
    layers: int
    embedding_length: int
    kv_bytes_per_token: int  # f16 K+V over all layers
    sliding_window: int
    is_embedding: bool

    @property
    def size_label(self) -> str:
        p = self.parameters
        return f"{p / 1e9:.1f}B" if p >= 1e9 else f"{p / 1e6:.0f}M"


def _describe_start(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:4] in (b"ggml", b"ggjt", b"ggmf", b"lmgg", b"tjgg"):
        return "it is an old GGML-format model; convert it to GGUF with llama.cpp's conversion scripts"
    if head.startswith(b"PK\x03\x04"):
        return "it is a zip archive; unpack it and choose the .gguf file inside"
    if head.lstrip().startswith((b"<!DOCTYPE", b"<html", b"<HTML")):
        return "it is a web page, probably an error page saved in place of the download"
    if head.lstrip().startswith(b"{"):
        return "it is a JSON file (a model's config, not its weights)"
    try:
        head.decode("utf-8")
        return "it is a text file"
    except UnicodeDecodeError:
        return "it does not start with the bytes 'GGUF' that every GGUF model starts with"


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise ModelError(f"There is no model file at {path}.")
    if path.is_dir():
        raise ModelError(f"{path} is a folder; choose a .gguf file inside it.")
    if not os.access(path, os.R_OK):
        raise ModelError(f"{path} cannot be read: permission denied.")
    if path.stat().st_size == 0:
        raise ModelError(f"{path} is empty (0 bytes): the download or copy did not finish.")


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n:,} bytes"


def read_checked_header(path: str | Path) -> Header:
    """The file's header, after every structural check; raise ModelError on the first failure."""
    path = Path(path)
    _check_readable(path)
    try:
        header = read_header(path)
    except HeaderError as e:
        if e.offset == 0 and "magic" in str(e):
            raise ModelError(f"{path.name} is not a GGUF model: {_describe_start(path)}.") from None
        raise ModelError(
            f"{path.name} is damaged: {e} (at byte {e.offset:,} of {_mb(path.stat().st_size)}); "
            "download it again.", detail=str(e)) from None
    except OSError as e:
        raise ModelError(f"{path} cannot be read: {e.strerror or e}.") from None
    if header.data_offset > header.file_size or header.data_end > header.file_size:
        raise ModelError(
            f"{path.name} ends at {_mb(header.file_size)} but its tensors need {_mb(header.data_end)}: "
            "the file is incomplete (an interrupted download?); download it again.")
    for t in header.tensors:
        if t.offset < header.data_offset:
            raise ModelError(f"{path.name} is damaged: tensor {t.name} points into the file's header.")
    if "general.architecture" not in header.metadata:
        raise ModelError(f"{path.name} has no general.architecture entry, so llama.cpp cannot load it.")
    return header


def _quantization(header: Header) -> str:
    file_type = header.metadata.get("general.file_type")
    try:
        return gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
    except (ValueError, TypeError):
        pass
    by_bytes: Counter = Counter()
    for t in header.tensors:
        by_bytes[t.type_name] += t.n_bytes
    return by_bytes.most_common(1)[0][0] if by_bytes else "unknown"


def _per_layer_sum(value, layers: int) -> int:
    if isinstance(value, list):
        return int(sum(value))
    return int(value or 0) * layers


def inspect_model(path: str | Path) -> ModelInfo:
    """Read a model's facts; raise ModelError when the file cannot be a loadable GGUF model."""
    header = read_checked_header(path)
    meta = header.metadata
    arch = str(meta["general.architecture"])

    def get(key: str, default=0):
        return meta.get(f"{arch}.{key}", default)

    layers = int(get("block_count") or 0)
    n_embd = int(get("embedding_length") or 0)
    n_head = get("attention.head_count", 0)
    n_head_kv = get("attention.head_count_kv", n_head)
    head_dim = n_embd // max(1, n_head if isinstance(n_head, int) else max(n_head or [1]))
    k_len = int(get("attention.key_length", head_dim) or head_dim)
    v_len = int(get("attention.value_length", head_dim) or head_dim)
    kv_heads_total = _per_layer_sum(n_head_kv, layers)
    template = meta.get("tokenizer.chat_template", "")
    template = template if isinstance(template, str) else ""
    return ModelInfo(
        path=str(Path(path).resolve()),
        name=str(meta.get("general.name") or Path(path).stem),
        architecture=arch,
        parameters=sum(t.n_elements for t in header.tensors),
        quantization=_quantization(header),
        context_length=int(get("context_length") or 0),
        file_size=header.file_size,
        has_template=bool(template.strip()),
        chat_template=template,
        thinking_format=detect_format(template).name,
        layers=layers,
        embedding_length=n_embd,
        kv_bytes_per_token=kv_heads_total * (k_len + v_len) * 2,
        sliding_window=int(get("attention.sliding_window") or 0),
        is_embedding=arch in EMBEDDING_ARCHITECTURES or meta.get(f"{arch}.pooling_type") is not None,
    )


COMPUTE_BASE_BYTES = 64_000_000  # what any model's compute graph takes, whatever its width
F32_BYTES = 4
BATCH_TOKENS = 512  # LoadSettings.n_batch: the prompt is evaluated this many tokens at a time
ACTIVATIONS_PER_TOKEN = 16  # a rough allowance: this many f32 vectors of the model's width per batch token


def estimate_memory(info: ModelInfo, n_ctx: int) -> int:
    """Bytes of RAM a load needs: the weights, an f16 KV cache for n_ctx, and compute buffers."""
    weights = info.file_size
    kv = info.kv_bytes_per_token * n_ctx
    # Compute buffers measured at ~150 MB for the default model at n_ctx 4096; they scale with the model's width.
    compute = COMPUTE_BASE_BYTES + info.embedding_length * F32_BYTES * BATCH_TOKENS * ACTIVATIONS_PER_TOKEN
    return weights + kv + compute
