"""The engine: load a model, answer questions in conversations, keep the history. No Qt, no printing."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.chat.history import History
from engine.chat.prompt import PackedPrompt, answer_reserve, pack_prompt
from engine.chat.templates import resolve_format
from engine.errors import Cancelled
from engine.events import Answer, Progress, Timings, Token, Usage
from engine.models.inspect import ModelInfo
from engine.models.registry import Registry
from engine.paths import data_dir
from engine.runtime.backend import Backend, detect_backend
from engine.runtime.loop import GenerationSettings, Generated, SamplingSettings, generate
from engine.runtime.session import CancelFn, LoadSettings, ModelSession

log = logging.getLogger(__name__)
EventFn = Callable[[object], None]
SAVE_EVERY_S = 0.5  # how often a streaming answer is written to history: at most this much is lost in a crash


@dataclass(frozen=True, slots=True)
class AskOptions:
    max_tokens: int = 512
    sampling: SamplingSettings = SamplingSettings()
    system_prompt: str = ""
    prompt_format: str | None = None  # None: the model's setting in the registry (auto by default)
    template_kwargs: tuple[tuple[str, object], ...] = ()


class Engine:
    """Owns at most one loaded model. Not thread-safe: the GUI's worker thread or the CLI drives it."""

    def __init__(self, registry: Registry | None = None, history: History | None = None) -> None:
        self.registry = registry or Registry()
        self._history = history
        self.session: ModelSession | None = None
        self.model_path: Path | None = None

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

    def conversation_turns(self, conversation_id: int) -> list[tuple[str, str]]:
        """The (question, answer) pairs of a conversation, oldest first."""
        turns, pending = [], None
        for m in self.history.messages(conversation_id):
            if m.role == "user":
                pending = m.content
            elif m.role == "assistant" and pending is not None:
                turns.append((pending, m.content))
                pending = None
        return turns

    def prepare_prompt(self, question: str, turns: list[tuple[str, str]], options: AskOptions) -> PackedPrompt:
        """The exact tokens the model will see for `question` after `turns`."""
        session = self._require_session()
        requested = options.prompt_format or self.registry.format_for(self.model_path)
        fmt = resolve_format(requested, session.info.has_template)
        return pack_prompt(
            fmt=fmt, system=options.system_prompt, turns=turns, question=question,
            tokenize=lambda text, bos: session.tokenize(text, add_bos=bos and session.adds_bos),
            n_ctx=session.n_ctx, reserve=answer_reserve(options.max_tokens, session.n_ctx),
            template=session.info.chat_template, bos_token=session.bos_text, eos_token=session.eos_text,
            template_kwargs=dict(options.template_kwargs))

    def _require_session(self) -> ModelSession:
        if self.session is None:
            self.load()
        assert self.session is not None
        return self.session

    def ask(self, question: str, *, conversation_id: int | None = None, options: AskOptions = AskOptions(),
            on_event: EventFn | None = None, is_cancelled: CancelFn | None = None) -> Answer:
        """Answer `question`, continuing `conversation_id` (a new conversation when None); stream Token events."""
        started = time.perf_counter()
        question = question.strip()
        if not question:
            raise ValueError("The question is empty.")
        session = self._require_session()
        history = self.history
        if conversation_id is None:
            conversation_id = history.create_conversation(question[:60])
        else:
            history.conversation(conversation_id)  # HistoryError when it does not exist
        turns = self.conversation_turns(conversation_id)
        packed = self.prepare_prompt(question, turns, options)
        history.add_message(conversation_id, "user", question)
        recorder = _AnswerRecorder(history, conversation_id, on_event)
        settings = GenerationSettings(options.max_tokens, packed.stop, options.sampling)
        try:
            generated = generate(session, packed.tokens, settings, recorder.on_text, is_cancelled)
        except Exception as e:
            recorder.finish("cancelled" if isinstance(e, Cancelled) else "error", {"error": str(e)})
            raise
        answer = self._answer(generated, packed, conversation_id, started)
        recorder.finish("cancelled" if generated.stop_reason == "cancelled" else "complete",
                        {"usage": _asdict(answer.usage), "timings": _asdict(answer.timings),
                         "stop_reason": answer.stop_reason, "model": answer.model}, answer.text)
        return answer

    def _answer(self, g: Generated, packed: PackedPrompt, conversation_id: int, started: float) -> Answer:
        session = self._require_session()
        evaluated = len(packed.tokens) - g.reused_tokens
        usage = Usage(prompt_tokens=len(packed.tokens), reused_tokens=g.reused_tokens, evaluated_tokens=evaluated,
                      answer_tokens=g.n_tokens, dropped_turns=packed.dropped_turns)
        prefill_s = g.prefilled - g.started
        timings = Timings(
            load_s=round(session.load_s, 3), ttft_s=round(g.first - started, 4),
            prefill_tok_s=round(evaluated / prefill_s, 1) if prefill_s > 0 else 0.0,
            decode_tok_s=round(g.decode_tok_s, 1))
        return Answer(text=g.text.strip(), stop_reason=g.stop_reason, usage=usage, timings=timings,
                      model=session.info.name, backend=self.backend.name, conversation_id=conversation_id)


def _asdict(obj) -> dict:
    return {name: getattr(obj, name) for name in obj.__slots__}


class _AnswerRecorder:
    """Streams tokens out and into history: the answer row appears with its first text and is saved
    every SAVE_EVERY_S, so a crash loses at most that much of it."""

    def __init__(self, history: History, conversation_id: int, on_event: EventFn | None) -> None:
        self.history, self.conversation_id, self.on_event = history, conversation_id, on_event
        self.text = ""
        self.message_id: int | None = None
        self.saved_at = 0.0

    def on_text(self, text: str) -> None:
        if not self.text:
            text = text.lstrip()  # base models answer " Paris": the space belongs to the prompt's "Answer:"
            if not text:
                return
        self.text += text
        if self.on_event is not None:
            self.on_event(Token(text, "answer"))
        now = time.monotonic()
        if self.message_id is None:
            self.message_id = self.history.add_message(self.conversation_id, "assistant", self.text, state="streaming")
            self.saved_at = now
        elif now - self.saved_at >= SAVE_EVERY_S:
            self.history.update_message(self.message_id, content=self.text)
            self.saved_at = now

    def finish(self, state: str, meta: dict, final_text: str | None = None) -> None:
        text = self.text.strip() if final_text is None else final_text
        if self.message_id is None:
            self.message_id = self.history.add_message(self.conversation_id, "assistant", text, state=state, meta=meta)
        else:
            self.history.update_message(self.message_id, content=text, state=state, meta=meta)
