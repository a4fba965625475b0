"""The engine: load a model, answer questions in conversations, keep the history. No Qt, no printing."""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from engine.answering import (Answerer, ReadFn, as_shown, documents_given, dropped_before, joined,
                              question_answer_pairs, with_passages)
from engine.budget.driver import PromptParts, ThinkingRequest, ThinkingRun, prompt_parts
from engine.budget.formats import SCAFFOLD_COMPLETION, SCAFFOLD_INSTRUCTION_CITED, ThinkingSupport, thinking_support
from engine.chat.history import History, StoredMessage
from engine.chat.prompt import PackedPrompt, answer_reserve, pack_prompt
from engine.chat.recorder import AnswerRecorder
from engine.chat.templates import Message, render_template, resolve_format
from engine.errors import Cancelled, ModelError
from engine.events import Answer, Progress, ReadAhead, ThinkingReport, Timings, Usage
from engine.models.builtin import find_builtin
from engine.models.inspect import ModelInfo
from engine.models.registry import Registry
from engine.options import AskOptions
from engine.rag.library import INSTRUCTION, DocumentContext, Library
from engine.runtime.backend import Backend, detect_backend
from engine.runtime.draft import DraftDecision, DraftModel, attach_draft
from engine.runtime.loop import GenerationSettings, Generated, generate
from engine.runtime.session import CancelFn, LoadSettings, ModelSession, chunk_within

log = logging.getLogger(__name__)

# A question asked while its draft is read ahead waits for the chunk under way, so read-ahead chunks are sized
# to take about this long at the rate prompts were last read (read_tok_s, measured on every prompt of 64 tokens or
# more, the instructions read after loading included). On the 2-core development machine the 1.5B read prompts
# at 16-21 tokens/s in 128-token chunks (and decodes 11 tokens/s one at a time), so its read-ahead chunks are
# 16-21 tokens and take 1-1.5 s, where a 128-token chunk would hold the question up 6-8 s; Gemma 3 270M (~300
# tokens/s) keeps 128. Smaller chunks would answer Enter sooner but read slower: a token alone costs the 1.5B
# ~90 ms here, one in a 128-token chunk 48-62 ms (how fast 16-token chunks read could not be timed on a quiet
# machine yet; `ponder bench --only documents_ttft_typed` prints how much each read-ahead got through).
READ_AHEAD_WAIT_S = 1.0


def common_start(a: list[int], b: list[int]) -> list[int]:
    """The tokens `a` and `b` both begin with."""
    n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return a[:n]


@dataclass(frozen=True, slots=True)
class _LocalPrompt:
    """A question's prompt on the loaded model, and the thinking it was built for."""

    question: str
    options: AskOptions
    support: ThinkingSupport
    request: ThinkingRequest
    parts: PromptParts
    packed: PackedPrompt


class Engine(Answerer):
    """Owns at most one loaded model and answers with it. Not thread-safe: the GUI's engine lane or the CLI
    drives it."""

    def __init__(self, registry: Registry | None = None, history: History | None = None,
                 library: Library | None = None) -> None:
        super().__init__(history, library)
        self.registry = registry or Registry()
        self.session: ModelSession | None = None
        self.model_path: Path | None = None
        self.draft: DraftModel | None = None  # drafts for the model when speculation is asked for
        self.draft_decision: DraftDecision | None = None  # why the draft model drafts or not, measured
        self._support: dict[str, ThinkingSupport] = {}

    @property
    def backend(self) -> Backend:
        return detect_backend()

    @property
    def model_info(self) -> ModelInfo | None:
        return self.session.info if self.session else None

    def load(self, model: str | Path | None = None, settings: LoadSettings = LoadSettings(),
             on_progress: Callable[[Progress], None] | None = None,
             is_cancelled: CancelFn | None = None) -> ModelInfo:
        """Load `model` (a name, a path, or None for the default), replacing the loaded one; with
        `settings.draft_model`, then decide whether that model drafts for it (`load_draft`)."""
        path = self.registry.resolve(str(model) if model else None, on_progress, is_cancelled)
        session = ModelSession.load(path, settings, on_progress, is_cancelled)
        self.unload()
        self.session, self.model_path = session, Path(path)
        log.info("loaded %s in %.2f s on %s", session.info.name, session.load_s, self.backend.name)
        if settings.draft_model:
            try:
                self.load_draft(settings.draft_model, settings.force_draft, is_cancelled)
            except ModelError as e:  # the model is loaded and answers; only its draft is refused, with the reason
                log.warning("%s", e.message)
                self.draft_decision = DraftDecision(str(settings.draft_model), False, False, 0.0, {}, 0.0, 0.0,
                                                    e.message)
        return session.info

    def load_draft(self, model: str | Path, is_forced: bool = False,
                   is_cancelled: CancelFn | None = None) -> DraftDecision:
        """Let `model` (a name or a path: a smaller model with the same vocabulary) draft for the loaded one
        where the costs measured here say it pays; it is not even loaded where it cannot (draft.py).
        `is_forced`: draft whatever the costs (tests, and measuring what drafting would give)."""
        session = self._require_session()
        self.unload_draft()
        builtin = find_builtin(str(model))
        if builtin is not None:
            name, size = builtin.name, builtin.size
        else:
            file = self.registry.resolve(str(model))
            name, size = file.stem, file.stat().st_size if file.is_file() else 0
        path = lambda: self.registry.resolve(str(model), None, is_cancelled)
        self.draft, self.draft_decision = attach_draft(session, name, size, path, session.settings, is_forced)
        return self.draft_decision

    def unload_draft(self) -> None:
        if self.draft is not None:
            self.draft.close()
            self.draft = None
        self.draft_decision = None

    def unload(self) -> None:
        self.unload_draft()
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
        return question_answer_pairs(self.history.messages(conversation_id))

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
                       parts: PromptParts | None = None, dropped: int = 0) -> PackedPrompt:
        """The exact tokens the model will see for `question` after `turns`, leaving out the oldest `dropped`
        while the rest fits (more when they do not)."""
        session = self._require_session()
        fmt = self._prompt_format(options)
        if parts is None:
            support = self.thinking_support(fmt)
            parts = prompt_parts(support, self.thinking_request(options, support))
        # What never changes comes first, so its cache is reused across questions and conversations: the
        # scaffold's instruction before the system prompt, which ends with a question's documents, if any.
        # The thinking instruction leads (a fixed prefix every question shares), except the citing one: it follows
        # the passages, where the 1.5B heeds it (before them it answered without [n]).
        order = ((options.system_prompt, parts.system_extra) if parts.system_extra == SCAFFOLD_INSTRUCTION_CITED
                 else (parts.system_extra, options.system_prompt))
        system = "\n\n".join(p for p in order if p)
        return pack_prompt(
            fmt=fmt, system=system, turns=turns, question=question,
            tokenize=lambda text, bos: session.tokenize(text, add_bos=bos and session.adds_bos),
            n_ctx=session.n_ctx, reserve=answer_reserve(options.max_tokens, session.n_ctx),
            template=session.info.chat_template, bos_token=session.bos_text, eos_token=session.eos_text,
            template_kwargs={**parts.template_kwargs, **dict(options.template_kwargs)},
            thinking=parts.thinking, suffix=parts.suffix, dropped_before=dropped)

    def warm(self, options: AskOptions = AskOptions(), is_cancelled: CancelFn | None = None) -> int:
        """Read now what every question's prompt starts with — the template's opening, the instructions, the
        system prompt; with `options.collection`, the document prompt's — so a question asked next evaluates only
        what is its own. Nothing that depends on the question is read. Returns the tokens evaluated."""
        session = self._require_session()
        support = self.thinking_support(self._prompt_format(options))
        parts = prompt_parts(support, self.thinking_request(options, support), cites=bool(options.collection))

        def tokens(question: str, documents: str) -> list[int]:
            system = joined(options.system_prompt, INSTRUCTION, documents) if options.collection else \
                options.system_prompt
            return self.prepare_prompt(question, [], replace(options, system_prompt=system), parts).tokens

        prefix = common_start(tokens("Why?", "[1] a.txt\nOne."), tokens("How many are there?", "[1] b.md\nTwo."))
        if not prefix or session.tokens[:len(prefix)] == prefix:
            return 0
        before = session.evaluated
        session.prepare(prefix, is_cancelled)
        return session.evaluated - before

    def read_ahead(self, draft: str, *, conversation_id: int | None = None, options: AskOptions = AskOptions(),
                   is_cancelled: CancelFn | None = None, on_read: ReadFn | None = None) -> ReadAhead:
        """While `draft` is still being typed (with a collection to answer from), find its passages and read the
        prompt its question will have up to the question's own words — template opening, instructions, system
        prompt, the numbered passages, the turns before — into the cache, in chunks a question asked meanwhile
        waits at most READ_AHEAD_WAIT_S for. When the question is asked and gets the same passages, only its own
        tokens are left to read; when it gets others, the cache simply does not match. Either way the prompt is
        the one asking gives, built afresh. A stop keeps what was read. Loads no model and writes nothing.

        A follow-up's new passages go in its own turn, after the turns before, so reading them keeps what the cache
        holds. Only where the passages would start afresh (the conversation's no longer fit) would reading throw
        the cached turns away; that draft is not read, since a question that keeps the passages needs the turns as
        they are, and a wrong guess would cost reading them all again."""
        session, draft = self.session, draft.strip()
        if session is None or not draft:
            return ReadAhead(skipped="No model is loaded." if session is None else "Nothing is typed yet.")
        options, earlier, documents = self._draft(draft, conversation_id, options)
        if documents is None:
            return ReadAhead(skipped="No collection is chosen: the instructions were read after loading.")
        start = self._question_start(options, earlier, documents)
        kept = documents_given(earlier, options.collection)
        if kept is not None and session.common_prefix(start) < session.common_prefix(
                self._question_start(options, earlier, kept, with_added=False)):
            return ReadAhead(documents.sources, documents.text, len(start), 0, session.common_prefix(start),
                             skipped="The passages would start afresh before the conversation's turns, which the "
                                     "cache holds: nothing is read until the question is asked.")
        before, stopped = session.evaluated, False
        try:
            session.read(start, is_cancelled, on_read, chunk_within(READ_AHEAD_WAIT_S, session.read_tok_s))
        except Cancelled:
            stopped = True
        return ReadAhead(documents.sources, documents.text, len(start), session.evaluated - before,
                         session.common_prefix(start), stopped)

    def _question_start(self, options: AskOptions, earlier: list[StoredMessage], documents: DocumentContext,
                        with_added: bool = True) -> list[int]:
        """The tokens a question's prompt begins with before its own words, answering from `documents` after the
        `earlier` messages (and, `with_added`, the passages the question brings): where two questions' prompts
        part."""
        options = replace(options, system_prompt=joined(options.system_prompt, INSTRUCTION, documents.in_system))
        support = self.thinking_support(self._prompt_format(options))
        parts = prompt_parts(support, self.thinking_request(options, support), cites=True)
        turns, dropped = question_answer_pairs(as_shown(earlier, documents)), dropped_before(earlier)
        added = documents.added if with_added else ""
        tokens = lambda question: self.prepare_prompt(with_passages(added, question), turns, options, parts,
                                                      dropped).tokens
        return common_start(tokens("Why?"), tokens("How many are there?"))

    def _banned_in_answer(self, support: ThinkingSupport) -> tuple[int, ...]:
        """A native span's opener may not start a second span inside the answer (single-token openers only)."""
        if not support.format.native:
            return ()
        tokens = self._require_session().tokenize(support.format.start)
        return tuple(tokens) if len(tokens) == 1 else ()

    # -- answering: the turn's lifecycle is Answerer.ask; these are the local model's own steps ----------
    def _get_ready(self) -> None:
        self._require_session()

    def _document_room(self, question: str, earlier: list[StoredMessage],
                       options: AskOptions) -> tuple[Callable[[str], int], int]:
        """The documents may take what the context leaves beside the instruction, the question and the answer
        (earlier turns make room: the oldest are dropped first)."""
        session = self._require_session()
        overhead = len(self.prepare_prompt(question, [], replace(options, system_prompt=INSTRUCTION)).tokens)
        room = session.n_ctx - answer_reserve(options.max_tokens, session.n_ctx) - overhead
        return (lambda text: len(session.tokenize(text))), room

    def _read_tok_s(self) -> float | None:
        return self._require_session().read_tok_s

    def _prepare(self, question: str, earlier: list[StoredMessage], options: AskOptions, cites: bool,
                 added: str = "") -> _LocalPrompt:
        support = self.thinking_support(self._prompt_format(options))
        request = self.thinking_request(options, support)
        parts = prompt_parts(support, request, cites=cites)
        packed = self.prepare_prompt(with_passages(added, question), question_answer_pairs(earlier), options, parts,
                                     dropped_before(earlier))
        return _LocalPrompt(question, options, support, request, parts, packed)

    def _generate(self, p: _LocalPrompt, recorder: AnswerRecorder, is_cancelled: CancelFn,
                  started: float) -> Answer:
        session = self._require_session()
        run = None
        if p.parts.thinking:
            room = session.n_ctx - len(p.packed.tokens) - answer_reserve(p.options.max_tokens, session.n_ctx)
            run = ThinkingRun(session, p.support, p.request, p.question, p.options.sampling, room,
                              recorder.on_thinking)
        settings = GenerationSettings(p.options.max_tokens, p.packed.stop, p.options.sampling,
                                      self._banned_in_answer(p.support) if run else (),
                                      p.support.format.result_line, p.options.speculate)
        on_read = lambda done, total: recorder.on_read(done, total, session.read_tok_s)
        generated = generate(session, p.packed.tokens, settings, recorder.on_text, is_cancelled, run, on_read,
                             self.draft)
        report = run.report(generated.last) if run else ThinkingReport(p.support.format.name, 0, 0, "off")
        return self._answer(generated, p.packed, started, recorder.reasoning.strip(), report,
                            run.first_sampled if run else 0.0)

    def _answer(self, g: Generated, packed: PackedPrompt, started: float, reasoning: str, report: ThinkingReport,
                first_thinking: float) -> Answer:
        session = self._require_session()
        evaluated = len(packed.tokens) - g.reused_tokens
        usage = Usage(prompt_tokens=len(packed.tokens), reused_tokens=g.reused_tokens, evaluated_tokens=evaluated,
                      thinking_tokens=report.used, answer_tokens=g.n_tokens, dropped_turns=packed.dropped_turns,
                      drafted_tokens=g.drafted, accepted_tokens=g.accepted,
                      draft_model=self.draft.name if self.draft and g.drafted else "")
        prefill_s = g.prefilled - g.started
        timings = Timings(
            load_s=round(session.load_s, 3), ttft_s=round((first_thinking or g.first) - started, 4),
            prefill_tok_s=round(evaluated / prefill_s, 1) if prefill_s > 0 else 0.0,
            decode_tok_s=round(g.decode_tok_s, 1))
        return Answer(text=g.text.strip(), stop_reason=g.stop_reason, usage=usage, timings=timings,
                      reasoning=reasoning, model=session.info.name, backend=self.backend.name,
                      budget=report.budget, thinking=report, prompt=packed.text)
