"""What the server does with a checked request: one model in memory, its prompts built as the local engine
builds them, answers run together on the batched runtime, documents searched here, embeddings from the
document embedder. No HTTP here (http.py), no wire format (protocol.py).

Thinking: a request that names a budget (in any field protocol.thinking_of reads) gets the engine's thinking,
the same span, controller and budget as `ponder ask --budget`; one that names none gets the model as it is: its
native span under Auto if it was trained to think, else a plain chat answer (Ponder's step-by-step scaffold,
with its "Final answer:" line, only when thinking was asked for).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from engine.answering import DOCUMENT_MARGIN, joined
from engine.budget.driver import PromptParts, ThinkingRequest, prompt_parts
from engine.budget.formats import SCAFFOLD_CHAT, ThinkingSupport
from engine.chat.prompt import PackedPrompt, answer_reserve
from engine.chat.templates import resolve_format
from engine.engine import Engine
from engine.errors import CollectionError, GenerationError
from engine.events import Progress, Source
from engine.models.default import DEFAULT_MODEL
from engine.options import AskOptions
from engine.rag.library import INSTRUCTION, Library
from engine.runtime.batch import BatchRuntime, BatchStats, choose_slots, measure_parallel
from engine.runtime.loop import GenerationSettings
from engine.runtime.session import LoadSettings
from engine.runtime.slot import SlotJob, SlotResult, ThinkingPlan
from engine.server.protocol import ApiError, GenerationAsk, Turn

log = logging.getLogger(__name__)
MOST_SLOTS = 4  # --parallel's default ceiling: measured more rarely pays (the 1.5B: 8 slots 0.99x)
EMBEDDING_ID = "all-minilm-l6-v2"
LOG_LINES = 500


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """`ponder serve`'s options. parallel None: measure, up to MOST_SLOTS. n_ctx: each slot's context."""

    host: str = "127.0.0.1"
    port: int = 1234
    model: str | None = None
    parallel: int | None = None
    n_ctx: int = 4096
    n_threads: int | None = None
    n_gpu_layers: int | None = None
    api_key: str | None = field(default=None, repr=False)  # never printed or logged


@dataclass
class Ticket:
    """One request on its way: ("thinking" | "answer", text) pieces, then ("done", SlotResult), on `events`."""

    model: str
    prompt_tokens: int
    sources: tuple[Source, ...] = ()
    notice: str = ""
    events: queue.Queue = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def on_piece(self, kind: str, text: str) -> None:
        self.events.put((kind, text))

    def on_done(self, result: SlotResult) -> None:
        self.events.put(("done", result))


def _pairs(turns: list[Turn]) -> tuple[list[tuple[str, str]], str]:
    """Earlier (question, answer) pairs and the question: consecutive messages of one role are joined."""
    merged: list[Turn] = []
    for t in turns:
        if merged and merged[-1].role == t.role:
            merged[-1] = Turn(t.role, merged[-1].content + "\n\n" + t.content)
        else:
            merged.append(t)
    pairs, pending = [], ""
    for t in merged[:-1]:
        if t.role == "user":
            pending = t.content
        else:
            pairs.append((pending, t.content))
            pending = ""
    return pairs, merged[-1].content


class ModelService:
    """The loaded model and the batched runtime behind every endpoint. Thread-safe."""

    def __init__(self, settings: ServeSettings, library: Library | None = None,
                 on_progress: Callable[[Progress], None] | None = None) -> None:
        self.settings = settings
        self.engine = Engine(library=library)
        self._lock = threading.Lock()  # prompts: the engine and the library are not thread-safe
        self._embed_lock = threading.Lock()
        self.log_lines: deque[str] = deque(maxlen=LOG_LINES)
        self._log_lock = threading.Lock()
        load = LoadSettings(n_ctx=settings.n_ctx, n_threads=settings.n_threads, n_gpu_layers=settings.n_gpu_layers)
        info = self.engine.load(settings.model, load, on_progress)
        session = self.engine.session
        named = settings.model or DEFAULT_MODEL.name
        is_file = named.endswith(".gguf") or Path(named).expanduser().is_file()
        self.model_id = Path(named).stem if is_file else named
        self._aliases = {self.model_id, info.name, Path(self.engine.model_path).stem}
        self.slot_rates: dict[int, float] = {}
        slots = settings.parallel
        if slots is None:
            # On a thread that ends with the measurement: a thread that has computed keeps an OpenMP team of its
            # own while it lives, and the batch thread's is best left the only one (engine/openmp.py).
            with ThreadPoolExecutor(1, thread_name_prefix="ponder-measure") as aside:
                self.slot_rates = aside.submit(measure_parallel, session,
                                               [n for n in (1, 2, 4, 8) if n <= MOST_SLOTS]).result()
            slots = choose_slots(self.slot_rates)
            self.log(f"batching measured: {self.slot_rates} tokens/s for n sequences -> {slots} slots")
        self.runtime = BatchRuntime(session, slots, session.n_ctx)
        self.n_ctx = session.n_ctx
        self.started = time.time()
        self.log(f"loaded {self.model_id} ({info.name}), {slots} slots of {self.n_ctx:,} tokens")

    # -- bookkeeping ----------------------------------------------------------------------------
    def log(self, line: str) -> None:
        """A line for the server's log view and the logger (never a secret, never a prompt's text)."""
        with self._log_lock:
            self.log_lines.append(time.strftime("%H:%M:%S ") + line)
        log.info("%s", line)

    def stats(self) -> BatchStats:
        return self.runtime.stats()

    def close(self) -> None:
        self.runtime.close()
        self.engine.unload()

    def models(self) -> list[dict]:
        created = int(self.started)
        return [{"id": self.model_id, "object": "model", "created": created, "owned_by": "ponder",
                 "ponder": {"kind": "chat", "context": self.n_ctx, "slots": len(self.runtime.slots)}},
                {"id": EMBEDDING_ID, "object": "model", "created": created, "owned_by": "ponder",
                 "ponder": {"kind": "embedding"}}]

    def check_model(self, name: str | None) -> str:
        if name and name not in self._aliases:
            if name == EMBEDDING_ID:
                raise ApiError(400, f"'{name}' is the embedding model; chat with '{self.model_id}'.", "model",
                               "model_not_supported")
            raise ApiError(404, f"The model '{name}' does not exist on this server; it serves '{self.model_id}'.",
                           "model", "model_not_found")
        return self.model_id

    # -- generation -----------------------------------------------------------------------------
    def start(self, ask: GenerationAsk, is_cancelled: Callable[[], bool]) -> Ticket:
        """Check, build the prompt and queue the request; its text arrives on the ticket's events."""
        model = self.check_model(ask.model)
        with self._lock:
            job, ticket = self._chat(ask, model) if ask.messages else self._completion(ask, model)
        self.runtime.submit(replace(job, on_piece=ticket.on_piece,
                                    is_cancelled=lambda: ticket.cancelled.is_set() or is_cancelled()),
                            ticket.on_done)
        return ticket

    def _completion(self, ask: GenerationAsk, model: str) -> tuple[SlotJob, Ticket]:
        session = self.engine.session
        tokens = session.tokenize(ask.prompt, add_bos=session.adds_bos)
        if len(tokens) >= self.n_ctx - 1:
            raise _too_long(self.n_ctx, 1, "prompt")
        settings = GenerationSettings(min(ask.max_tokens, self.n_ctx), ask.stop, ask.sampling)
        return SlotJob(tokens, settings), Ticket(model, len(tokens))

    def _support(self) -> ThinkingSupport:
        e = self.engine
        return e.thinking_support(resolve_format(e.registry.format_for(e.model_path), e.session.info.has_template))

    def _chat(self, ask: GenerationAsk, model: str) -> tuple[SlotJob, Ticket]:
        pairs, question = _pairs([t for t in ask.messages if t.role != "system"])
        system = joined(*(t.content for t in ask.messages if t.role == "system"))
        max_tokens = ask.max_tokens or self.n_ctx
        options = AskOptions(max_tokens=max_tokens, sampling=ask.sampling, system_prompt=system,
                             template_kwargs=ask.template_kwargs)
        support = self._support()
        request = ask.thinking.request
        if request is None:
            request = ThinkingRequest(None) if support.format.native else ThinkingRequest(0)
        # A chat model never trained to think, asked not to: the model as it is, not Ponder's scaffold.
        plain = support.format is SCAFFOLD_CHAT and not request.auto and not request.budget
        sources, notice = (), ""
        if ask.thinking.collection:
            options, sources, notice = self._documents(ask.thinking.collection, question, options, support, request)
        parts = PromptParts(False) if plain else prompt_parts(support, request, cites=bool(sources))
        packed = self._pack(question, pairs, options, parts)
        reserve = answer_reserve(max_tokens, self.n_ctx)
        plan = None
        if parts.thinking:
            plan = ThinkingPlan(support.format, request, question, self.n_ctx - len(packed.tokens) - reserve,
                                ask.sampling)
        settings = GenerationSettings(max_tokens, packed.stop + ask.stop, ask.sampling,
                                      self._banned(support) if plan else (),
                                      support.format.result_line and not plain)
        return SlotJob(packed.tokens, settings, plan), Ticket(model, len(packed.tokens), sources, notice)

    def _pack(self, question: str, pairs: list[tuple[str, str]], options: AskOptions,
              parts: PromptParts) -> PackedPrompt:
        try:
            packed = self.engine.prepare_prompt(question, pairs, options, parts)
        except GenerationError as e:
            raise ApiError(400, str(e), "messages", "context_length_exceeded") from None
        if packed.dropped_turns:  # the engine drops the oldest turns; an API client is told instead
            raise _too_long(self.n_ctx, answer_reserve(options.max_tokens, self.n_ctx))
        return packed

    def _banned(self, support: ThinkingSupport) -> tuple[int, ...]:
        """As the engine: a native span's opener may not start a second span inside the answer."""
        if not support.format.native:
            return ()
        tokens = self.engine.session.tokenize(support.format.start)
        return tuple(tokens) if len(tokens) == 1 else ()

    def _documents(self, collection: str, question: str, options: AskOptions, support: ThinkingSupport,
                   request: ThinkingRequest):
        """The collection's passages joined to the system prompt, sized as the engine sizes them."""
        library = self.engine.library
        try:
            library.store.collection_id(collection)
        except CollectionError as e:
            raise ApiError(404, str(e), "ponder.collection", "collection_not_found") from None
        session = self.engine.session
        bare = replace(options, system_prompt=joined(options.system_prompt, INSTRUCTION))
        overhead = len(self.engine.prepare_prompt(question, [], bare, prompt_parts(support, request, True)).tokens)
        room = self.n_ctx - answer_reserve(options.max_tokens, self.n_ctx) - overhead - DOCUMENT_MARGIN
        with self._embed_lock:
            docs = library.context(collection, question, lambda text: len(session.tokenize(text)), max(0, room))
        return (replace(options, system_prompt=joined(options.system_prompt, INSTRUCTION, docs.text)),
                docs.sources, docs.note)

    # -- embeddings -----------------------------------------------------------------------------
    def embed(self, model: str | None, texts: list[str]) -> tuple[list[list[float]], int]:
        """Vectors of `texts` from the document embedder, and the tokens they took."""
        if model and model != EMBEDDING_ID:
            if model in self._aliases:
                raise ApiError(400, f"'{model}' is a chat model; embeddings come from '{EMBEDDING_ID}'.", "model",
                               "model_not_supported")
            raise ApiError(404, f"The model '{model}' does not exist on this server; embeddings come from "
                           f"'{EMBEDDING_ID}'.", "model", "model_not_found")
        with self._embed_lock:
            embedder = self.engine.library.embedder
            vectors = embedder.embed_documents(texts)
            used = sum(len(embedder.tokenize(t)) for t in texts)
        return [v.tolist() for v in vectors], used


def _too_long(n_ctx: int, reserve: int, param: str = "messages") -> ApiError:
    return ApiError(400, f"The {param} do not fit: each request has {n_ctx:,} tokens of context, {reserve:,} of them "
                    "kept for the answer. Shorten them, or start the server with a larger --ctx.", param,
                    "context_length_exceeded")
