"""Continuous batching: many requests, one model, one context with a sequence id per slot.

Each slot (runtime/slot.py) holds one request: its own KV range (the context is made with `n_seq_max` slots
and a KV cache split per sequence), sampler, thinking controller and stops. One thread owns the context and
loops: take queued requests into free slots (the slot whose cache shares the longest prefix with the new
prompt), put one `llama_decode` batch together from every slot's pending tokens — a token each for those
decoding, then chunks of the prompts being read, so a new prompt never stalls the others' next token for more
than one chunk — and hand each slot its logits. A request that is cancelled (its client went away) is dropped
before the next decode, and its slot is free at once.

How many slots pay is a property of the machine and the model: `measure_parallel` decodes one token for n
sequences at once and reports tokens/s per n, so the server picks its slot count from a measurement.
"""
from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Sequence

import llama_cpp
import numpy as np
from llama_cpp import _internals as internals

from engine.errors import GenerationError
from engine.runtime import backend
from engine.runtime.session import ModelSession, _context_params
from engine.runtime.slot import Slot, SlotJob, SlotResult, common_prefix, entropy_of

log = logging.getLogger(__name__)
DoneFn = Callable[[SlotResult], None]
# A slot copies another slot's cached prompt start when that saves reading at least this many tokens. The copy
# moves the whole KV stream of a slot (the 1.5B: ~120 MB for 4,096 cells, measured at ~19 ms on 2 cores);
# reading 16 tokens there took 0.1-0.28 s of model evaluation.
COPY_GAIN = 16


def _new_context(session: ModelSession, n_seq: int, n_ctx_seq: int) -> internals.LlamaContext:
    params = _context_params(session.settings, n_ctx_seq * n_seq)
    params.n_seq_max = n_seq
    params.kv_unified = False  # each sequence attends over its own cells only, not every slot's
    try:
        return internals.LlamaContext(model=session.model, params=params, verbose=True)
    except ValueError:
        raise GenerationError(f"llama.cpp could not create a context for {n_seq} sequences of {n_ctx_seq:,} tokens; "
                              "use fewer slots or a smaller context.", "\n".join(backend.recent_errors())) from None


class _Batch:
    """A llama_batch filled token by token, each with its own sequence and position."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._owner = internals.LlamaBatch(n_tokens=capacity, embd=0, n_seq_max=1)
        self.raw = self._owner.batch
        self.n = 0

    def add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        b, i = self.raw, self.n
        b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, 1, logits
        b.seq_id[i][0] = seq
        self.n += 1
        return i

    def decode(self, ctx: internals.LlamaContext) -> int:
        self.raw.n_tokens = self.n
        code = llama_cpp.llama_decode(ctx.ctx, self.raw)
        self.n = 0
        return code

    def close(self) -> None:
        self._owner.close()


@dataclass(frozen=True, slots=True)
class BatchStats:
    requests: int  # finished since start
    active: int  # slots busy now
    queued: int
    sampled: int  # tokens sampled since start (thinking and answer)
    tok_s: float  # tokens sampled per second over the last few seconds


class BatchRuntime:
    """Runs SlotJobs together on `session`'s model in a context of its own (`slots` sequences of `n_ctx_slot`
    tokens). Thread-safe: submit from any thread; callbacks run on the runtime's thread and must be quick."""

    def __init__(self, session: ModelSession, slots: int, n_ctx_slot: int | None = None) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.session = session
        self.ctx = _new_context(session, slots, n_ctx_slot or session.n_ctx)
        self.n_ctx_slot = self.ctx.n_ctx() // slots
        self.n_batch = min(session.settings.n_batch, self.ctx.n_ctx())
        self._batch = _Batch(max(self.n_batch, slots))
        self.slots = [Slot(i, self) for i in range(slots)]
        self._queue: deque[tuple[SlotJob, float, DoneFn]] = deque()
        self._cv = threading.Condition()
        self._closing = False
        self.requests = self.sampled = 0
        self.copied = 0  # prompt tokens taken from another slot's cache instead of read (_share_prefix)
        self._recent: deque[tuple[float, int]] = deque(maxlen=64)  # (time, tokens sampled in that step)
        self._thread = threading.Thread(target=self._loop, name="ponder-batch", daemon=True)
        self._thread.start()

    # -- what slots use ---------------------------------------------------------------------------
    @property
    def n_vocab(self) -> int:
        return self.session.n_vocab

    def new_sampler(self) -> internals.LlamaSampler:
        return self.session.new_sampler()

    def tokenize(self, text: str) -> list[int]:
        return self.session.tokenize(text)

    def piece(self, token: int) -> bytes:
        return self.session.piece(token)

    def is_eog(self, token: int) -> bool:
        return self.session.is_eog(token)

    def logits(self, row: int) -> np.ndarray:
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.ctx.ctx, row), shape=(self.n_vocab,))

    def forbid_end(self, row: int) -> None:
        self.logits(row)[self.session.eog_tokens] = -np.inf

    def entropy(self, row: int) -> float:
        return entropy_of(self.logits(row))

    def remove(self, seq: int, keep: int) -> int:
        """Drop sequence `seq`'s cells from position `keep` on; returns how many it keeps (0 if it had to clear)."""
        mem = self.ctx.memory
        if keep > 0 and llama_cpp.llama_memory_seq_rm(mem, seq, keep, -1):
            return keep
        llama_cpp.llama_memory_seq_rm(mem, seq, 0, -1)
        return 0

    # -- requests -------------------------------------------------------------------------------
    def submit(self, job: SlotJob, done: DoneFn) -> None:
        """Queue `job`; `done(result)` is called once, on the runtime's thread, when it ends."""
        self.submit_all([(job, done)])

    def submit_all(self, items: Sequence[tuple[SlotJob, DoneFn]]) -> None:
        """Queue several jobs at once: as many as there are free slots start in the same step."""
        for job, _done in items:
            if not job.prompt:
                raise GenerationError("The prompt is empty.")
            if len(job.prompt) >= self.n_ctx_slot:
                raise GenerationError(f"The prompt takes {len(job.prompt):,} tokens; a slot holds "
                                      f"{self.n_ctx_slot:,}.")
        with self._cv:
            if self._closing:
                raise GenerationError("The server is shutting down.")
            now = time.perf_counter()
            self._queue.extend((job, now, done) for job, done in items)
            self._cv.notify()

    def run(self, job: SlotJob) -> SlotResult:
        """Submit and wait (tests, benchmarks)."""
        finished = threading.Event()
        out: list[SlotResult] = []
        self.submit(job, lambda r: (out.append(r), finished.set()))
        finished.wait()
        return out[0]

    def wake(self) -> None:
        """Look at the cancel flags now (a client went away while nothing was decoding)."""
        with self._cv:
            self._cv.notify()

    def stats(self) -> BatchStats:
        with self._cv:
            recent = [(t, n) for t, n in self._recent if t > time.perf_counter() - 5]
            active, queued = sum(s.busy for s in self.slots), len(self._queue)
        span = recent[-1][0] - recent[0][0] if len(recent) > 1 else 0.0
        tok_s = sum(n for _t, n in recent[1:]) / span if span > 0 else 0.0
        return BatchStats(self.requests, active, queued, self.sampled, round(tok_s, 1))

    def close(self, wait_s: float = 600) -> None:
        """Stop: running requests end as cancelled after the decode in flight, then the context is freed."""
        with self._cv:
            self._closing = True
            self._cv.notify()
        self._thread.join(wait_s)
        if self._thread.is_alive():  # a decode still running: freeing its context under it would crash
            log.warning("the batch loop did not stop within %.0f s; its context is left to the process", wait_s)
            return
        self._batch.close()
        self.ctx.close()

    # -- the loop -------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cv:
                self._drop_cancelled_queue()
                while not self._closing and not self._queue and not any(s.busy for s in self.slots):
                    self._cv.wait()
                    self._drop_cancelled_queue()
                if self._closing:
                    break
                admitted = self._admit()
            for slot, job, submitted, done in admitted:
                self._start(slot, job, submitted, self._finished(done))
            for slot in self.slots:
                if slot.busy and slot._cancelled():
                    self._guard(slot, lambda: slot.finish("cancelled"))
            if any(s.busy for s in self.slots):
                self._step()
        for slot in self.slots:
            if slot.busy:
                slot.finish("cancelled", "The server shut down.")
        for job, _submitted, done in self._queue:
            done(SlotResult(stop_reason="cancelled", error="The server shut down."))

    def _drop_cancelled_queue(self) -> None:
        for item in [q for q in self._queue if q[0].is_cancelled is not None and q[0].is_cancelled()]:
            self._queue.remove(item)
            item[2](SlotResult(stop_reason="cancelled", submitted=item[1], end=time.perf_counter()))

    def _admit(self) -> list[tuple[Slot, SlotJob, float, DoneFn]]:
        admitted = []
        free = [s for s in self.slots if not s.busy]
        while self._queue and free:
            job, submitted, done = self._queue.popleft()
            slot = self._choose(free, job.prompt)
            free.remove(slot)
            slot.job = job  # taken: start() runs outside the lock
            admitted.append((slot, job, submitted, done))
        return admitted

    def _choose(self, free: list[Slot], prompt: Sequence[int]) -> Slot:
        """The free slot whose cache shares the longest start with `prompt`."""
        return max(free, key=lambda s: common_prefix(s.tokens, prompt))

    def _share_prefix(self, slot: Slot, prompt: Sequence[int]) -> None:
        """Give `slot` another slot's cached start of `prompt` when that one holds COPY_GAIN more tokens of it
        (a system prompt every client sends, a conversation continued in another slot): llama.cpp copies the
        other sequence's whole KV stream, a memory copy, where reading the tokens again is a model evaluation.
        Slot.start then trims the copy to the shared prefix."""
        others = [s for s in self.slots if s is not slot]
        if not others:
            return
        donor = max(others, key=lambda s: common_prefix(s.tokens, prompt))
        own, shared = common_prefix(slot.tokens, prompt), common_prefix(donor.tokens, prompt)
        if shared < own + COPY_GAIN:
            return
        llama_cpp.llama_memory_seq_cp(self.ctx.memory, donor.seq, slot.seq, -1, -1)
        slot.tokens = list(donor.tokens)
        self.copied += shared - own

    def _finished(self, done: DoneFn) -> DoneFn:
        def finished(result: SlotResult) -> None:
            self.requests += 1
            try:
                done(result)
            except Exception:  # noqa: BLE001 - a caller's callback must not stop every other request
                log.exception("a request's done callback failed")
        return finished

    def _start(self, slot: Slot, job: SlotJob, submitted: float, done: DoneFn) -> None:
        """Start `job` in `slot`; if that fails, the request ends with the error (its client is told)."""
        try:
            self._share_prefix(slot, job.prompt)
            slot.start(job, submitted, done)
        except Exception as e:  # noqa: BLE001 - one request's failure ends that request, not the server
            log.exception("request in slot %d failed to start", slot.seq)
            if slot.done is not None:
                slot.finish("error", str(e) or type(e).__name__)
                return
            slot.job = None
            done(SlotResult(stop_reason="error", error=str(e) or type(e).__name__, submitted=submitted,
                            end=time.perf_counter()))

    def _guard(self, slot: Slot, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as e:  # noqa: BLE001 - one request's failure ends that request, not the server
            log.exception("request in slot %d failed", slot.seq)
            if slot.busy:
                slot.finish("error", str(e) or type(e).__name__)

    def _step(self) -> None:
        plan = []
        busy = [s for s in self.slots if s.busy and s.pending]
        for slot in sorted(busy, key=lambda s: len(s.pending)):  # decoding slots first, then prompt chunks
            n = slot.take(self._batch.capacity - self._batch.n)
            if n <= 0:
                continue
            if len(slot.tokens) + n > self.n_ctx_slot:
                self._guard(slot, lambda: slot.finish("context"))
                continue
            wanted = set(slot.logit_rows(n))
            rows = {i: self._batch.add(t, len(slot.tokens) + i, slot.seq, i in wanted)
                    for i, t in enumerate(slot.pending[:n])}
            plan.append((slot, n, {i: rows[i] for i in wanted}))
        if not plan:
            return
        code = self._batch.decode(self.ctx)
        if code != 0:
            detail = "\n".join(backend.recent_errors())
            log.error("llama_decode returned %d: %s", code, detail)
            for slot, _n, _rows in plan:
                slot.tokens = slot.tokens[:self.remove(slot.seq, 0)]
                self._guard(slot, lambda: slot.finish("error", f"llama.cpp failed to evaluate (llama_decode "
                                                               f"returned {code})."))
            return
        sampled = 0
        for slot, n, rows in plan:
            slot.evaluated(n)
            if rows:
                sampled += 1
                self._guard(slot, lambda: slot.on_logits(rows))
        self.sampled += sampled
        with self._cv:
            self._recent.append((time.perf_counter(), sampled))


def measure_parallel(session: ModelSession, candidates: Sequence[int] = (1, 2, 4, 8), steps: int = 12,
                     rounds: int = 3) -> dict[int, float]:
    """Aggregate tokens/s of one llama_decode carrying one token for each of n sequences, per n, on a small
    throwaway context: what batching buys on this machine with this model. The candidates take turns, `rounds`
    times, and each n's figure is its median: a shared machine's speed drifts by a third within a minute, and
    measuring each n in a block of its own would hand the drift to the ratios."""
    most = max(candidates)
    prompt = session.tokenize("The quick brown fox jumps over the lazy dog.", add_bos=session.adds_bos)
    ctx = _new_context(session, most, 256)
    batch = _Batch(max(most * len(prompt), most))

    def rate(n: int) -> float:
        llama_cpp.llama_memory_clear(ctx.memory, True)
        for seq in range(n):
            for i, t in enumerate(prompt):
                batch.add(t, i, seq, False)
        if batch.decode(ctx) != 0:
            raise GenerationError("llama.cpp failed to evaluate while measuring batching.")
        start = time.perf_counter()
        for step in range(steps):
            for seq in range(n):
                batch.add(prompt[step % len(prompt)], len(prompt) + step, seq, True)
            if batch.decode(ctx) != 0:
                raise GenerationError("llama.cpp failed to decode while measuring batching.")
        return n * steps / (time.perf_counter() - start)
    try:
        rate(most)  # pages the weights in and sizes the buffers; not counted
        samples: dict[int, list[float]] = {n: [] for n in candidates}
        for _ in range(rounds):
            for n in candidates:
                samples[n].append(rate(n))
        return {n: round(statistics.median(rates), 1) for n, rates in samples.items()}
    finally:
        batch.close()
        ctx.close()


def choose_slots(rates: dict[int, float], tolerance: float = 0.05) -> int:
    """The fewest sequences that give (within `tolerance`) the most tokens/s: more slots than that only slow
    each client down."""
    best = max(rates.values())
    return min(n for n, r in rates.items() if r >= best * (1 - tolerance))
