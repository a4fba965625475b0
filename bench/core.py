"""Engine core against raw llama-cpp-python on the same model, threads and context, in one process.

Runs alternate engine/baseline and keep each side's best of REPEATS, because
these shared machines are noisy and the best run is the least disturbed one.
"""
from __future__ import annotations

import functools
import time
from pathlib import Path

import llama_cpp

from bench.runner import Result
from engine import AskOptions, Engine, LoadSettings, SamplingSettings
from engine.models.registry import Registry
from engine.runtime.backend import default_threads

N_CTX = 2048
MODEL: str | None = None  # `ponder bench --model`: the model the engine-vs-raw benches load (None: the default)
REPEATS = 5
DECODE_TOKENS = 128
GREEDY = SamplingSettings(temperature=0, repeat_penalty=1.0)
# chatml on the base default model rambles on instead of stopping, which a decode benchmark needs.
RAMBLE = AskOptions(max_tokens=DECODE_TOKENS, sampling=GREEDY, prompt_format="chatml")
LONG_TEXT = ("The history of the Roman Empire spans many centuries, from the founding of the city to the fall "
             "of Constantinople. Its institutions, roads and laws shaped Europe for a thousand years. ") * 12


def model_path() -> Path:
    """The file of the model `--model` names (the default model when none is named)."""
    return Registry().resolve(MODEL)


@functools.cache
def engine() -> Engine:
    e = Engine()
    e.load(MODEL, LoadSettings(n_ctx=N_CTX))
    return e


@functools.cache
def raw_llama() -> llama_cpp.Llama:
    threads = default_threads()
    return llama_cpp.Llama(str(engine().model_path), n_ctx=N_CTX, n_batch=512, n_threads=threads,
                           n_threads_batch=threads, n_gpu_layers=0 if not engine().backend.gpu_offload else -1,
                           swa_full=True, flash_attn=True, verbose=False)  # as the engine: auto = on here


def _raw_decode(tokens: list[int], limit: int) -> tuple[int, float]:
    """llama-cpp-python's own generate() loop: returns (tokens, seconds from first to last token)."""
    llm = raw_llama()
    times = []
    for token in llm.generate(tokens, temp=0.0, repeat_penalty=1.0, reset=True):
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
            break
        times.append(time.perf_counter())
        if len(times) >= limit:
            break
    return len(times), times[-1] - times[0]


def bench_decode() -> list[Result]:
    e = engine()
    question = "Write a long essay about the history of Rome."
    tokens = e.prepare_prompt(question, [], RAMBLE).tokens
    best_engine = best_raw = 0.0
    for _ in range(REPEATS):
        e.session.clear()
        answer = e.ask(question, options=RAMBLE)
        best_engine = max(best_engine, answer.timings.decode_tok_s)
        n, seconds = _raw_decode(tokens, answer.usage.answer_tokens)
        best_raw = max(best_raw, (n - 1) / seconds)
    return [Result("decode", "tok/s", round(best_engine, 2), round(best_raw, 2), ">=0.97")]


def bench_prefill() -> list[Result]:
    e = engine()
    options = AskOptions(max_tokens=1, sampling=GREEDY)
    tokens = e.prepare_prompt(LONG_TEXT, [], options).tokens
    llm = raw_llama()
    best_engine = best_raw = 0.0
    for _ in range(REPEATS):
        e.session.clear()
        answer = e.ask(LONG_TEXT, options=options)
        best_engine = max(best_engine, answer.timings.prefill_tok_s)
        llm.reset()
        start = time.perf_counter()
        llm.eval(tokens)
        best_raw = max(best_raw, len(tokens) / (time.perf_counter() - start))
    return [Result("prefill", "tok/s", round(best_engine, 2), round(best_raw, 2), ">=0.97")]


def _raw_new_tokens_ttft(history: list[int], prompt: list[int]) -> float:
    """Time to evaluate only the tokens of `prompt` not already in `history`, and sample the first token."""
    llm = raw_llama()
    common = 0
    for a, b in zip(history, prompt):
        if a != b:
            break
        common += 1
    common = min(common, len(prompt) - 1)
    llm.reset()
    llm.eval(history[:common])
    start = time.perf_counter()
    llm.eval(prompt[common:])
    llm.sample(temp=0.0, repeat_penalty=1.0)
    return time.perf_counter() - start


def bench_turn2_ttft() -> list[Result]:
    """Engine: from ask() to the first sampled token of turn 2 (packing, history and reuse included)."""
    e = engine()
    options = AskOptions(max_tokens=48, sampling=GREEDY)
    question = "And who was its first emperor?"
    best_engine = best_raw = float("inf")
    for i in range(REPEATS):
        e.session.clear()
        first = e.ask(f"{LONG_TEXT[:600]} In which century did the empire fall? ({i})", options=options)
        turn1_stream = list(e.session.tokens)
        prompt2 = e.prepare_prompt(question, e.conversation_turns(first.conversation_id), options).tokens
        second = e.ask(question, conversation_id=first.conversation_id, options=options)
        best_engine = min(best_engine, second.timings.ttft_s)
        best_raw = min(best_raw, _raw_new_tokens_ttft(turn1_stream, prompt2))
    return [Result("turn2_ttft", "s", round(best_engine, 4), round(best_raw, 4), "<=1.2")]
