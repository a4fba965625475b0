"""The converted all-MiniLM-L6-v2 GGUF against an independent numpy forward pass of the same weights."""
from __future__ import annotations

import zipfile
from math import erf

import numpy as np
import pytest
from tokenizers import Tokenizer

from engine import ModelError
from engine.models.convert_bert import minilm_zip, read_model_zip
from engine.rag.embed import Embedder, prefixes_for

SENTENCES = [
    "The cat sits on the mat.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "Ünïcödé text, numbers like 3.14159, and punctuation!?",
    "SQLite's FTS5 extension implements full-text search with BM25 ranking.",
]


@pytest.fixture(scope="module")
def weights():
    return read_model_zip(minilm_zip())


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def numpy_bert(config, t, ids: list[int]) -> np.ndarray:
    """Textbook BERT (exact-erf GELU) + mean pooling + L2 norm, float64."""
    f = {k: v.astype(np.float64) for k, v in t.items()}
    eps, heads = config["layer_norm_eps"], config["num_attention_heads"]
    n = len(ids)
    x = f["embeddings.word_embeddings.weight"][ids] + f["embeddings.position_embeddings.weight"][:n]
    x = x + f["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, f["embeddings.LayerNorm.weight"], f["embeddings.LayerNorm.bias"], eps)
    gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / np.sqrt(2))))
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda h, name, p=p: h @ f[p + name + ".weight"].T + f[p + name + ".bias"]
        q, k, v = (lin(x, f"attention.self.{m}").reshape(n, heads, -1).transpose(1, 0, 2)
                   for m in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
        att = np.exp(scores - scores.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        ctx = (att @ v).transpose(1, 0, 2).reshape(n, -1)
        x = layer_norm(x + lin(ctx, "attention.output.dense"), f[p + "attention.output.LayerNorm.weight"],
                       f[p + "attention.output.LayerNorm.bias"], eps)
        h = gelu(lin(x, "intermediate.dense"))
        x = layer_norm(x + lin(h, "output.dense"), f[p + "output.LayerNorm.weight"], f[p + "output.LayerNorm.bias"],
                       eps)
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def test_tokenization_matches_the_reference_tokenizer(embedder):
    hf = Tokenizer.from_str(zipfile.ZipFile(minilm_zip()).read("tokenizer.json").decode())
    hf.no_padding()
    for s in SENTENCES:
        assert embedder.tokenize(s) == hf.encode(s).ids


def test_converted_model_matches_numpy_forward_pass(embedder, weights):
    config, _, tensors = weights
    ours = embedder.embed_documents(SENTENCES)
    for s, v in zip(SENTENCES, ours):
        reference = numpy_bert(config, tensors, embedder.tokenize(s))
        assert float(v @ reference) >= 0.99, s


def test_similar_sentences_are_closer(embedder):
    a, b, c = embedder.embed_documents(["The cat sits on the mat.", "A kitten rests on a rug.",
                                        "Interest rates rose again this quarter."])
    assert a @ b > a @ c + 0.3


def test_batching_does_not_change_vectors(embedder):
    together = embedder.embed_documents(SENTENCES)
    alone = np.array([embedder.embed_documents([s])[0] for s in SENTENCES])
    assert np.allclose(together, alone, atol=1e-4)


def test_chat_model_is_not_an_embedder(gemma_model):
    with pytest.raises(ModelError, match="not an embedding model"):
        Embedder(gemma_model)


def test_prefixes():
    assert prefixes_for("nomic-embed-text-v1.5").query == "search_query: "
    assert prefixes_for("multilingual-e5-small").document == "passage: "
    assert prefixes_for("all-MiniLM-L6-v2").query == ""
