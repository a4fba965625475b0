"""The engine: load a model, answer questions in conversations, keep the history. No Qt, no printing."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

from engine.budget.driver import PromptParts, ThinkingRequest, ThinkingRun, prompt_parts
from engine.budget.formats import SCAFFOLD_COMPLETION, ThinkingSupport, thinking_support
from engine.chat.history import History
from engine.chat.prompt import PackedPrompt, answer_reserve, pack_prompt
from engine.chat.recorder import AnswerRecorder
from engine.chat.templates import Message, render_template, resolve_format
from engine.errors import Cancelled
from engine.events import Answer, Progress, ThinkingReport, Timings, Usage
from engine.models.inspect import ModelInfo
from engine.models.registry import Registry
from engine.paths import data_dir
from engine.rag.library import INSTRUCTION, DocumentContext, Library
from engine.runtime.backend import Backend, detect_backend
from engine.runtime.loop import GenerationSettings, Generated, SamplingSettings, generate
from engine.runtime.session import CancelFn, LoadSettings, ModelSession

log = logging.getLogger(__name__)
EventFn = Callable[[object], None]
DOCUMENT_MARGIN = 64  # tokens kept free between the documents and the answer reserve (separators, the turn)


@dataclass(frozen=True, slots=True)
class AskOptions:
    max_tokens: int = 512  # answer tokens; thinking has its own budget
    sampling: SamplingSettings = SamplingSettings()
    system_prompt: str = ""
    prompt_format: str | None = None  # None: the model's setting in the registry (auto by default)
    template_kwargs: tuple[tuple[str, object], ...] = ()
    thinking: ThinkingRequest | None = None  # None: Auto for chat models, off for base models
    collection: str | None = None  # answer from this document collection, citing its sources


class Engine:
    """Owns at most one loaded model. Not thread-safe: the GUI's worker thread or the CLI drives it."""

    def __init__(self, registry: Registry | None = None, history: History | None = None) -> None:
        self.registry = registry or Registry()
        self._history = history
        self.session: ModelSession | None = None
        self.model_path: Path | None = None
        self._support: dict[str, ThinkingSupport] = {}
        self._library: Library | None = None

    @property
    def library(self) -> Library:
        """Document collections (opened on first use)."""
        if self._library is None:
            self._library = Library()
        return self._library

    @property
    def history(self) -> History:
        if self._history is None:
            self._history = History(data_dir() / "history.sqlite3")
        return self._history

    @property
    def backend(self) -> Backend:
        return detect_backend()

    @property
    def model_info(self) -> ModelInfo | None:
        return self.session.info if self.session else None

    def load(self, model: str | Path | None = None, settings: LoadSettings = LoadSettings(),
             on_progress: Callable[[Progress], None] | None = None,
             is_cancelled: CancelFn | None = None) -> ModelInfo:
        """Load `model` (a name, a path, or None for the default), replacing the loaded one."""
        path = self.registry.resolve(str(model) if model else None, on_progress, is_cancelled)
        session = ModelSession.load(path, settings, on_progress, is_cancelled)
        self.unload()
        self.session, self.model_path = session, Path(path)
        log.info("loaded %s in %.2f s on %s", session.info.name, session.load_s, self.backend.name)
        return session.info

    def unload(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
        self._support.clear()

    def _require_session(self) -> ModelSession:
        if self.session is None:
            self.load()
        assert self.session is not None
        return self.session

    def conversation_turns(self, conversation_id: int) -> list[tuple[str, str]]:
        """The (question, answer) pairs of a conversation, oldest first (reasoning is not replayed)."""
        turns, pending = [], None
        for m in self.history.messages(conversation_id):
            if m.role == "user":
                pending = m.content
            elif m.role == "assistant" and pending is not None:
                turns.append((pending, m.content))
                pending = None
        return turns

    # -- thinking -------------------------------------------------------------------------------
    def _prompt_format(self, options: AskOptions) -> str:
        session = self._require_session()
        return resolve_format(options.prompt_format or self.registry.format_for(self.model_path),
                              session.info.has_template)

    def thinking_support(self, prompt_format: str) -> ThinkingSupport:
        """How the loaded model thinks in `prompt_format` (detected once per model and format)."""
        if prompt_format not in self._support:
            s = self._require_session()
            probe = lambda **kw: render_template(s.info.chat_template, [Message("user", "x")], bos_token=s.bos_text,
                                                 eos_token=s.eos_text, **kw)
            self._support[prompt_format] = thinking_support(s.info.chat_template, prompt_format, probe)
        return self._support[prompt_format]

    def thinking_request(self, options: AskOptions, support: ThinkingSupport) -> ThinkingRequest:
        """The request as given, else Auto for chat models (native or scaffolded thinking) and Off for base
        models, whose few-shot prompt has no room for useful reasoning."""
        if options.thinking is not None:
            return options.thinking
        return ThinkingRequest(budget=0) if support.format is SCAFFOLD_COMPLETION else ThinkingRequest(budget=None)

    def prepare_prompt(self, question: str, turns: list[tuple[str, str]], options: AskOptions,
                       parts: PromptParts | None = None) -> PackedPrompt:
        """The exact tokens the model will see for `question` after `turns`."""
        session = self._require_session()
        fmt = self._prompt_format(options)
        if parts is None:
            support = self.thinking_support(fmt)
            parts = prompt_parts(support, self.thinking_request(options, support))
        system = "\n\n".join(p for p in (options.system_prompt, parts.system_extra) if p)
        return pack_prompt(
            fmt=fmt, system=system, turns=turns, question=question,
            tokenize=lambda text, bos: session.tokenize(text, add_bos=bos and session.adds_bos),
            n_ctx=session.n_ctx, reserve=answer_reserve(options.max_tokens, session.n_ctx),
            template=session.info.chat_template, bos_token=session.bos_text, eos_token=session.eos_text,
            template_kwargs={**parts.template_kwargs, **dict(options.template_kwargs)},
            thinking=parts.thinking, suffix=parts.suffix)

    def _banned_in_answer(self, support: ThinkingSupport) -> tuple[int, ...]:
        """A native span's opener may not start a second span inside the answer (single-token openers only)."""
        if not support.format.native:
            return ()
        tokens = self._require_session().tokenize(support.format.start)
        return tuple(tokens) if len(tokens) == 1 else ()

    # -- answering ------------------------------------------------------------------------------
    def ask(self, question: str, *, conversation_id: int | None = None, options: AskOptions = AskOptions(),
            on_event: EventFn | None = None, is_cancelled: CancelFn | None = None) -> Answer:
        """Answer `question`, continuing `conversation_id` (a new conversation when None); stream Token events."""
        started = time.perf_counter()
        question = question.strip()
        if not question:
            raise ValueError("The question is empty.")
        session = self._require_session()
        history = self.history
        if options.collection:
            self.library.store.collection_id(options.collection)  # CollectionError before anything is written
        if conversation_id is None:
            conversation_id = history.create_conversation(question[:60])
        options = self._attach_collection(conversation_id, options)
        support = self.thinking_support(self._prompt_format(options))
        request = self.thinking_request(options, support)
        documents = self._documents(question, options) if options.collection else None
        parts = prompt_parts(support, request, cites=documents is not None)
        if documents is not None:
            system = "\n\n".join(p for p in (options.system_prompt, INSTRUCTION, documents.text) if p)
            options = replace(options, system_prompt=system)
        packed = self.prepare_prompt(question, self.conversation_turns(conversation_id), options, parts)
        history.add_message(conversation_id, "user", question)
        recorder = AnswerRecorder(history, conversation_id, on_event)
        run = None
        if parts.thinking:
            room = session.n_ctx - len(packed.tokens) - answer_reserve(options.max_tokens, session.n_ctx)
            run = ThinkingRun(session, support, request, question, options.sampling, room, recorder.on_thinking)
        settings = GenerationSettings(options.max_tokens, packed.stop, options.sampling,
                                      self._banned_in_answer(support) if run else (), support.format.result_line)
        try:
            generated = generate(session, packed.tokens, settings, recorder.on_text, is_cancelled, run)
        except Exception as e:
            recorder.finish("cancelled" if isinstance(e, Cancelled) else "error", {"error": str(e)})
            raise
        report = run.report(generated.last) if run else ThinkingReport(support.format.name, 0, 0, "off")
        answer = self._answer(generated, packed, conversation_id, started, recorder.reasoning.strip(), report,
                              run.first_sampled if run else 0.0)
        if documents is not None:
            answer = replace(answer, sources=documents.sources, context=documents.text, notice=documents.note)
        recorder.finish("cancelled" if generated.stop_reason == "cancelled" else "complete",
                        {"usage": asdict(answer.usage), "timings": asdict(answer.timings), "thinking": asdict(report),
                         "stop_reason": answer.stop_reason, "model": answer.model, "prompt": packed.text,
                         "sources": list(answer.sources), "notice": answer.notice}, answer.text)
        return answer

    def _attach_collection(self, conversation_id: int, options: AskOptions) -> AskOptions:
        """A collection named with a question stays attached to its conversation: later questions use it
        too, until another one is named ("" detaches)."""
        conversation = self.history.conversation(conversation_id)  # HistoryError when it does not exist
        attached = conversation.settings.get("collection") or None
        if options.collection is None:
            return replace(options, collection=attached) if attached else options
        if options.collection != attached:
            self.history.update_settings(conversation_id, {**conversation.settings,
                                                           "collection": options.collection or None})
        return replace(options, collection=options.collection or None)

    def _documents(self, question: str, options: AskOptions) -> DocumentContext:
        """The collection's text for this question, sized to what the context window leaves free."""
        session = self._require_session()
        overhead = len(self.prepare_prompt(question, [], replace(options, system_prompt=INSTRUCTION)).tokens)
        budget = session.n_ctx - answer_reserve(options.max_tokens, session.n_ctx) - overhead - DOCUMENT_MARGIN
        return self.library.context(options.collection, question, lambda t: len(session.tokenize(t)), max(0, budget))

    def _answer(self, g: Generated, packed: PackedPrompt, conversation_id: int, started: float, reasoning: str,
                report: ThinkingReport, first_thinking: float) -> Answer:
        session = self._require_session()
        evaluated = len(packed.tokens) - g.reused_tokens
        usage = Usage(prompt_tokens=len(packed.tokens), reused_tokens=g.reused_tokens, evaluated_tokens=evaluated,
                      thinking_tokens=report.used, answer_tokens=g.n_tokens, dropped_turns=packed.dropped_turns)
        prefill_s = g.prefilled - g.started
        timings = Timings(
            load_s=round(session.load_s, 3), ttft_s=round((first_thinking or g.first) - started, 4),
            prefill_tok_s=round(evaluated / prefill_s, 1) if prefill_s > 0 else 0.0,
            decode_tok_s=round(g.decode_tok_s, 1))
        return Answer(text=g.text.strip(), stop_reason=g.stop_reason, usage=usage, timings=timings,
                      reasoning=reasoning, model=session.info.name, backend=self.backend.name,
                      budget=report.budget,
                      conversation_id=conversation_id, thinking=report)
