"""A loaded model and its context: the token stream held in the KV cache, and what can be reused.

This, loop.py, draft.py, batch.py, backend.py, cpu_variants.py and rag/embed.py are the only modules that talk to
llama-cpp-python's internals, so a version bump touches those seven.
"""
from __future__ import annotations

import ctypes
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import llama_cpp
import numpy as np
import psutil
from llama_cpp import _internals as internals

from engine.errors import Cancelled, GenerationError, ModelError
from engine.events import Progress
from engine.models.inspect import KNOWN_ARCHITECTURES, ModelInfo, estimate_memory, inspect_model
from engine.runtime import backend

log = logging.getLogger(__name__)

ProgressFn = Callable[[Progress], None]
CancelFn = Callable[[], bool]
ReadFn = Callable[[int, int], None]  # (prompt tokens evaluated so far, tokens this prompt evaluates)

# Tokens per llama_decode while a prompt is read: a stop and the progress shown wait for at most one of these.
# At the 1.5B's ~70 tokens/s on 2 CPU cores that is under 2 s; smaller batches cost prefill speed.
PREFILL_CHUNK = 128
READ_SAMPLE = 64  # a prompt this long or longer measures how fast prompts are read (read_tok_s)
SMALLEST_CHUNK = 8  # a chunk smaller than this costs more in llama_decode's fixed work than it saves in waiting


def chunk_within(seconds: float, tok_s: float | None) -> int:
    """The largest prompt chunk read in about `seconds` at `tok_s` prompt tokens per second (unknown: the
    smallest), between SMALLEST_CHUNK and PREFILL_CHUNK."""
    if not tok_s:
        return SMALLEST_CHUNK
    return max(SMALLEST_CHUNK, min(PREFILL_CHUNK, int(seconds * tok_s)))


@dataclass(frozen=True, slots=True)
class LoadSettings:
    """How to load a model. None means: choose for this machine."""

    n_ctx: int = 4096
    n_threads: int | None = None
    n_gpu_layers: int | None = None  # -1: every layer, 0: none
    n_batch: int = 512
    use_mmap: bool = True
    # A smaller model with the same vocabulary that drafts for this one where measured costs say it pays (a name
    # or a path; engine/runtime/draft.py). The engine loads it beside the model; ModelSession ignores it.
    draft_model: str | None = None
    force_draft: bool = False  # draft with it even where the costs say it cannot pay (tests, measuring the gain)


# llama_model_params.devices: a NULL-terminated list of the devices to use; this one lists none but the CPU.
_CPU_ONLY = (ctypes.c_void_p * 1)()


def _model_params(settings: LoadSettings, callback) -> llama_cpp.llama_model_params:
    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = backend.llama_gpu_layers(settings.n_gpu_layers)
    if settings.n_gpu_layers == 0:  # asked for no GPU: none is even opened (CI's Mac has a GPU that hangs Metal)
        params.devices = ctypes.addressof(_CPU_ONLY)
    params.load_mode = llama_cpp.LLAMA_LOAD_MODE_MMAP if settings.use_mmap else llama_cpp.LLAMA_LOAD_MODE_NONE
    params.progress_callback = callback
    return params


FLASH_ATTN = llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO  # llama.cpp enables it where the backend supports the model


def _context_params(settings: LoadSettings, n_ctx: int) -> llama_cpp.llama_context_params:
    params = llama_cpp.llama_context_default_params()
    threads = settings.n_threads or backend.default_threads()
    params.n_ctx = n_ctx
    params.n_batch = params.n_ubatch = min(settings.n_batch, n_ctx)
    params.n_threads = params.n_threads_batch = threads
    # A full-size sliding-window cache lets a turn rewind into the window (Gemma 3: 512 tokens);
    # with a pruned one, rewinding would silently attend to evicted cells.
    params.swa_full = True
    params.flash_attn_type = FLASH_ATTN
    params.op_offload = settings.n_gpu_layers != 0  # with no GPU asked for, large batches stay on the CPU too
    return params


def _check_memory(info: ModelInfo, n_ctx: int) -> None:
    need = estimate_memory(info, n_ctx)
    free = psutil.virtual_memory().available
    if need > free:
        raise ModelError(
            f"{Path(info.path).name} needs about {need / 2**30:.1f} GiB of memory with a {n_ctx:,}-token "
            f"context, but only {free / 2**30:.1f} GiB is free: choose a smaller context or a smaller model, "
            "or close other programs.")


def _load_failure(info: ModelInfo, cancelled: bool) -> Exception:
    if cancelled:
        return Cancelled("Loading the model was stopped.")
    errors = backend.recent_errors()
    detail = "\n".join(errors)
    if any("unknown model architecture" in e for e in errors) or info.architecture not in KNOWN_ARCHITECTURES:
        return ModelError(
            f"{Path(info.path).name} uses the '{info.architecture}' architecture, which this version of "
            "llama.cpp does not support; update Ponder or choose another model.", detail)
    reason = errors[-1].split("error loading model:")[-1].strip() if errors else "llama.cpp gave no reason"
    return ModelError(f"{Path(info.path).name} could not be loaded: {reason}.", detail)


@dataclass(frozen=True, slots=True)
class Probe:
    text: str  # what the model would say next
    entropy: float  # of the first token's distribution, in nats
    cost: int  # tokens evaluated, rollback included


class ModelSession:
    """One model, one context, one sequence. `tokens` mirrors what the KV cache holds."""

    def __init__(self, info: ModelInfo, model, ctx, settings: LoadSettings, load_s: float) -> None:
        self.info, self.settings, self.load_s = info, settings, load_s
        self._model, self._ctx = model, ctx
        self.n_ctx = ctx.n_ctx()
        self.n_batch = min(settings.n_batch, self.n_ctx)
        self._batch = internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=1)
        self.vocab = model.vocab
        self.tokens: list[int] = []
        self.evaluated = 0  # tokens decoded since load: KV reuse is measured with this
        self.read_tok_s: float | None = None  # prompt tokens per second, from the last prompt of READ_SAMPLE or more
        self._pieces: dict[int, bytes] = {}
        self._eog: np.ndarray | None = None

    @classmethod
    def load(cls, path: str | Path, settings: LoadSettings = LoadSettings(),
             on_progress: ProgressFn | None = None, is_cancelled: CancelFn | None = None) -> "ModelSession":
        """Validate and load a GGUF model; raise ModelError (or Cancelled) with a sentence to act on."""
        start = time.perf_counter()
        info = inspect_model(path)
        if info.is_embedding:
            raise ModelError(f"{Path(path).name} is an embedding model; it cannot chat. Use it for documents.")
        n_ctx = min(settings.n_ctx, info.context_length) if info.context_length else settings.n_ctx
        _check_memory(info, n_ctx)
        backend.detect_backend()
        backend.clear_recent_errors()
        state = {"cancelled": False}

        def report(fraction: float, _user_data) -> bool:
            try:
                if is_cancelled is not None and is_cancelled():
                    state["cancelled"] = True
                    return False
                if on_progress is not None:
                    on_progress(Progress(round(fraction, 3), 1.0, "Loading model"))
            except Exception:  # noqa: BLE001 - an exception must never unwind through C
                log.exception("load progress callback failed")
            return True

        callback = llama_cpp.llama_progress_callback(report)
        try:
            model = internals.LlamaModel(path_model=str(path), params=_model_params(settings, callback), verbose=True)
        except ValueError:
            raise _load_failure(info, state["cancelled"]) from None
        try:
            ctx = internals.LlamaContext(model=model, params=_context_params(settings, n_ctx), verbose=True)
        except ValueError:
            model.close()
            raise ModelError(f"llama.cpp could not create a {n_ctx:,}-token context for {info.name}; "
                             "try a smaller context.", "\n".join(backend.recent_errors())) from None
        return cls(info, model, ctx, settings, time.perf_counter() - start)

    # -- tokens ---------------------------------------------------------------------------------
    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = True) -> list[int]:
        return self._model.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)

    def piece(self, token: int) -> bytes:
        """The bytes a token stands for (control tokens render as their text)."""
        cached = self._pieces.get(token)
        if cached is None:
            # _internals.token_to_piece returns its whole 32-byte buffer, NULs included; use the length.
            buf = ctypes.create_string_buffer(64)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, True)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, True)
            cached = self._pieces[token] = buf.raw[:n]
        return cached

    def is_eog(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    @property
    def eog_tokens(self) -> np.ndarray:
        """Every end-of-generation token of the vocabulary (end of turn, end of text…), found once per model."""
        if self._eog is None:
            is_eog = llama_cpp.llama_vocab_is_eog
            self._eog = np.array([t for t in range(self.n_vocab) if is_eog(self.vocab, t)], dtype=np.int64)
        return self._eog

    def forbid_end(self) -> None:
        """Make the next sample anything but an end-of-generation token (edits the last logits in place)."""
        self.logits()[self.eog_tokens] = -np.inf

    @property
    def adds_bos(self) -> bool:
        return self._model.add_bos_token()

    @property
    def bos_text(self) -> str:
        bos = self._model.token_bos()
        return self._model.token_get_text(bos) if bos >= 0 else ""

    @property
    def eos_text(self) -> str:
        eos = self._model.token_eos()
        return self._model.token_get_text(eos) if eos >= 0 else ""

    # -- the KV cache ---------------------------------------------------------------------------
    def evaluate(self, tokens: Sequence[int], is_cancelled: CancelFn | None = None,
                 on_read: ReadFn | None = None, chunk: int = PREFILL_CHUNK) -> None:
        """Decode `tokens` after those already in the cache, `chunk` at a time; the cancel flag is checked and
        `on_read` told before each chunk (and at the end) when there is more than one. A stop keeps what was
        evaluated: asking again reuses it."""
        if len(self.tokens) + len(tokens) > self.n_ctx:
            raise GenerationError(
                f"The conversation needs {len(self.tokens) + len(tokens):,} tokens but the context holds "
                f"{self.n_ctx:,}; start a new conversation or load the model with a larger context.")
        step = max(1, min(self.n_batch, chunk))
        if len(tokens) <= step:
            on_read = None  # read at once: nothing to show
        start = time.perf_counter()
        for i in range(0, len(tokens), step):
            if on_read is not None:
                on_read(i, len(tokens))
            if is_cancelled is not None and is_cancelled():
                raise Cancelled()
            chunk = tokens[i:i + step]
            self._batch.set_batch(batch=chunk, n_past=len(self.tokens), logits_all=False)
            code = llama_cpp.llama_decode(self._ctx.ctx, self._batch.batch)
            if code != 0:
                self.clear()  # a failed decode leaves the cache in an unknown state
                raise GenerationError(f"llama.cpp failed to evaluate the prompt (llama_decode returned {code}).",
                                      "\n".join(backend.recent_errors()))
            self.tokens.extend(chunk)
            self.evaluated += len(chunk)
        if len(tokens) >= READ_SAMPLE:
            self.read_tok_s = len(tokens) / max(time.perf_counter() - start, 1e-6)
        if on_read is not None and tokens:
            on_read(len(tokens), len(tokens))

    def rewind(self, n: int) -> bool:
        """Keep only the first n tokens in the cache; False (and an empty cache) if it cannot."""
        if n >= len(self.tokens):
            return True
        mem = self._ctx.memory
        if n > 0 and llama_cpp.llama_memory_seq_rm(mem, 0, n, -1):
            self.tokens = self.tokens[:n]
            return True
        self.clear()
        return n == 0

    def verify(self, tokens: Sequence[int]) -> None:
        """Decode a short batch with logits kept for every position (speculative decoding reads each)."""
        if len(self.tokens) + len(tokens) > self.n_ctx or len(tokens) > self.n_batch:
            raise GenerationError(f"A verify batch of {len(tokens)} tokens does not fit the context.")
        self._batch.set_batch(batch=tokens, n_past=len(self.tokens), logits_all=True)
        code = llama_cpp.llama_decode(self._ctx.ctx, self._batch.batch)
        if code != 0:
            self.clear()
            raise GenerationError(f"llama.cpp failed to evaluate a draft (llama_decode returned {code}).",
                                  "\n".join(backend.recent_errors()))
        self.tokens.extend(tokens)
        self.evaluated += len(tokens)

    def sample_at(self, sampler: internals.LlamaSampler, i: int) -> int:
        """Sample from the logits of position i of the last batch (verify keeps them all)."""
        return sampler.sample(self._ctx, i)

    @property
    def can_roll_back(self) -> bool:
        """Whether the cache can drop its last tokens (recurrent state cannot: drafts need this)."""
        model = self._model.model
        return not (llama_cpp.llama_model_is_recurrent(model) or llama_cpp.llama_model_is_hybrid(model))

    def clear(self) -> None:
        llama_cpp.llama_memory_clear(self._ctx.memory, True)
        self.tokens = []

    def prepare(self, prompt: Sequence[int], is_cancelled: CancelFn | None = None,
                on_read: ReadFn | None = None) -> int:
        """Make the cache hold exactly `prompt`, evaluating only what is not cached. Returns tokens reused."""
        if not prompt:
            raise GenerationError("The prompt is empty.")
        common = self.common_prefix(prompt)
        # The last prompt token is always re-evaluated: its logits are what the next sample reads.
        keep = min(common, len(prompt) - 1)
        if not self.rewind(keep):
            keep = 0
        self.evaluate(prompt[keep:], is_cancelled, on_read)
        return keep

    def read(self, start: Sequence[int], is_cancelled: CancelFn | None = None, on_read: ReadFn | None = None,
             chunk: int = PREFILL_CHUNK) -> int:
        """Make the cache begin with `start` (what a prompt to come will begin with), evaluating only what is not
        cached, `chunk` tokens at a time. Unlike `prepare`, nothing already cached is evaluated again: no logits
        are read from here. Returns the tokens evaluated; a stop (Cancelled) keeps the chunks read before it."""
        common = self.common_prefix(start)
        if common == len(start):
            return 0
        if not self.rewind(common):
            common = 0
        measured = self.read_tok_s
        try:
            self.evaluate(start[common:], is_cancelled, on_read, chunk)
        finally:
            # Small chunks read slower than a prompt is: their rate must not stand for it (the whole-collection
            # choice and the time left shown while reading use read_tok_s).
            self.read_tok_s = measured
        return len(start) - common

    def common_prefix(self, tokens: Sequence[int]) -> int:
        """How many of `tokens`, from the first, the cache already holds."""
        common = 0
        for a, b in zip(self.tokens, tokens):
            if a != b:
                break
            common += 1
        return common

    def sample(self, sampler: internals.LlamaSampler) -> int:
        """Sample the next token from the logits of the last evaluated token."""
        return sampler.sample(self._ctx, -1)

    def logits(self) -> np.ndarray:
        """The last evaluated token's logits as a numpy view (valid until the next evaluate)."""
        return self.logits_at(-1)

    def logits_at(self, i: int) -> np.ndarray:
        """Position i of the last batch (-1: the last); every position after verify, only the last otherwise."""
        ptr = llama_cpp.llama_get_logits_ith(self._ctx.ctx, i)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def probe(self, text: str, n_decode: int) -> Probe:
        """Ask "what comes after `text`?" without changing the conversation: evaluate `text`, decode up to
        n_decode tokens greedily, then take the probe's cells back out of the KV cache.

        The cells of the conversation are never touched (rewinding removes only the probe's positions,
        and is safe inside a sliding window because contexts use swa_full). The next sample reads the
        logits buffer, so the conversation's last logits are copied back into it: bit for bit, where
        replaying the last token (llama-cpp-python's trick) gives logits off by ~0.05 from batching."""
        n0 = len(self.tokens)
        saved = self.logits().copy()
        injected = self.tokenize(text)
        self.evaluate(injected)
        logits = self.logits().astype(np.float64)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        entropy = float(-(p[p > 0] * np.log(p[p > 0])).sum())
        out, cost = b"", len(injected)
        for i in range(n_decode):
            token = int(np.argmax(self.logits()))
            if self.is_eog(token):
                break
            out += self.piece(token)
            if i + 1 < n_decode:
                self.evaluate([token])
                cost += 1
        if not self.rewind(n0):
            raise GenerationError("Could not roll back a probe: this model's memory cannot be rewound.")
        self.logits()[:] = saved
        return Probe(out.decode("utf-8", errors="replace"), entropy, cost)

    @property
    def model(self) -> internals.LlamaModel:
        """The loaded weights (a batched context of runtime/batch.py shares them)."""
        return self._model

    def new_sampler(self) -> internals.LlamaSampler:
        return internals.LlamaSampler()

    @property
    def n_vocab(self) -> int:
        return llama_cpp.llama_vocab_n_tokens(self.vocab)

    def close(self) -> None:
        self._batch.close()
        self._ctx.close()
        self._model.close()

