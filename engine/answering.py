"""Answering a question in a conversation, whoever answers it: one lifecycle for every answerer.

A turn, in order: the question is checked; the answerer gets ready (a model loads, a server is reached) so a
failure there writes nothing; the conversation is opened or created (titled by its question); the settings
the question brings are kept with it (an attached collection, the GUI's slider); the documents are chosen
and sized to the answerer's context window; the answerer builds its prompt from the turns before; the
question is stored; the answer streams out as Token events and into history through an AnswerRecorder; the
finished answer is stored with what it was made from. A stop is an answer with stop_reason "cancelled"; a
failure raises, and the answer is stored as failed.

Subclasses supply only what differs: `_get_ready`, `_document_room`, `_prepare` and `_generate`. The local
Engine and RemoteEngine are the two today; a server answering many people at once would be a third.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import asdict, replace
from typing import Callable

from engine.chat.history import History, StoredMessage
from engine.chat.recorder import AnswerRecorder
from engine.events import Answer, ConversationStarted, ReadAhead, Source
from engine.options import AskOptions
from engine.paths import data_dir
from engine.rag.library import INSTRUCTION, MORE_SOURCES, DocumentContext, Library

EventFn = Callable[[object], None]
CancelFn = Callable[[], bool]
ReadFn = Callable[[int, int], None]  # (tokens read so far, tokens to read)
TITLE_CHARS = 60  # a new conversation is titled with the start of its first question
DOCUMENT_MARGIN = 64  # tokens kept free between the documents and the answer reserve (separators, the turn)


def conversation_title(question: str) -> str:
    return question[:TITLE_CHARS]


def question_answer_pairs(messages: list[StoredMessage]) -> list[tuple[str, str]]:
    """The (question, answer) pairs of a conversation's messages, oldest first (reasoning is not replayed)."""
    turns, pending = [], None
    for m in messages:
        if m.role == "user":
            pending = m.content
        elif m.role == "assistant" and pending is not None:
            turns.append((pending, m.content))
            pending = None
    return turns


def dropped_before(earlier: list[StoredMessage]) -> int:
    """How many of the oldest turns the conversation's last answer left out of its prompt (the cut that the next
    prompt keeps while it fits: engine/chat/prompt.py)."""
    for m in reversed(earlier):
        usage = m.meta.get("usage") if m.role == "assistant" else None
        if usage:
            return int(usage.get("dropped_turns", 0))
    return 0


def joined(*parts: str) -> str:
    """System prompt pieces, blank-line separated, empty ones left out."""
    return "\n\n".join(p for p in parts if p)


def documents_given(earlier: list[StoredMessage], collection: str | None) -> DocumentContext | None:
    """The passages the conversation's last answer was given from `collection`, as it stored them."""
    last = next((m for m in reversed(earlier) if m.role == "assistant"), None)
    if last is None or not collection or last.meta.get("collection") != collection or not last.meta.get("context"):
        return None
    meta = last.meta
    return DocumentContext(meta["context"], tuple(Source(**s) for s in meta.get("sources", [])), meta.get("notice", ""),
                           base=meta.get("base", ""), added=meta.get("added", ""))


def with_passages(added: str, question: str) -> str:
    """A question as the model reads it when it brought new passages: them first, then its own words. A
    follow-up's new passages go here, not beside the conversation's first ones in the system prompt, so
    everything before this turn stays as the cache holds it and only the new passages and question are read."""
    return f"{MORE_SOURCES}\n\n{added}\n\nQuestion: {question}" if added else question


def as_shown(earlier: list[StoredMessage], documents: DocumentContext | None) -> list[StoredMessage]:
    """The conversation as the model is shown it beside `documents`: each earlier question that brought passages
    to the same system-prompt passages has them before its words again, as it had when it was asked. Questions
    asked before the passages started afresh are shown as they were typed (their passages are gone)."""
    if documents is None:
        return earlier
    shown, asked = list(earlier), None  # asked: the index of the question the next answer answers
    for i, m in enumerate(earlier):
        if m.role == "user":
            asked = i
        elif m.role == "assistant" and asked is not None:
            if m.meta.get("added") and m.meta.get("base") == documents.in_system:
                shown[asked] = replace(earlier[asked], content=with_passages(m.meta["added"], earlier[asked].content))
            asked = None
    return shown


def reading_label(documents: DocumentContext | None, earlier: list[StoredMessage]) -> str:
    """What the person is told while the prompt is read: "Reading 3 passages"."""
    if documents is not None and documents.sources:
        if not documents.note:
            return "Reading the whole collection"
        n = len(documents.sources)
        return f"Reading {n} passage{'s' if n != 1 else ''}"
    return "Reading the conversation" if earlier else "Reading the question"


def stored_meta(answer: Answer) -> dict:
    """What history keeps with a finished answer: enough to show it again, sources and prompt included."""
    return {"usage": asdict(answer.usage), "timings": asdict(answer.timings),
            "thinking": asdict(answer.thinking) if answer.thinking else None, "stop_reason": answer.stop_reason,
            "model": answer.model, "backend": answer.backend, "prompt": answer.prompt,
            "sources": [asdict(s) for s in answer.sources], "notice": answer.notice}


class Answerer(ABC):
    """Answers questions in conversations kept in `history`, from documents in `library` when asked.
    Not thread-safe: one ask at a time (the GUI's engine lane or the CLI drives it)."""

    def __init__(self, history: History | None = None, library: Library | None = None) -> None:
        self._history = history
        self._library = library

    @property
    def history(self) -> History:
        """The conversations (the person's own history file unless one was given)."""
        if self._history is None:
            self._history = History(data_dir() / "history.sqlite3")
        return self._history

    @property
    def library(self) -> Library:
        """Document collections (opened on first use unless one was given)."""
        if self._library is None:
            self._library = Library()
        return self._library

    @library.setter
    def library(self, library: Library | None) -> None:
        """Answer from another library; None goes back to the person's own, opened on next use."""
        self._library = library

    def ask(self, question: str, *, conversation_id: int | None = None, options: AskOptions = AskOptions(),
            on_event: EventFn | None = None, is_cancelled: CancelFn | None = None) -> Answer:
        """Answer `question`, continuing `conversation_id` (a new conversation when None, announced by a
        ConversationStarted event); the answer streams out as Token events."""
        started = time.perf_counter()
        question = question.strip()
        if not question:
            raise ValueError("The question is empty.")
        self._get_ready()
        if options.collection:
            self.library.store.collection_id(options.collection)  # CollectionError before anything is written
        emit = on_event or (lambda _e: None)
        if conversation_id is None:
            conversation_id = self.history.create_conversation(conversation_title(question))
            emit(ConversationStarted(conversation_id))
        options = self._conversation_options(conversation_id, options)
        earlier = self.history.messages(conversation_id)
        documents = self._documents(question, earlier, options) if options.collection else None
        if documents is not None:
            options = replace(options, system_prompt=joined(options.system_prompt, INSTRUCTION, documents.in_system))
        prepared = self._prepare(question, as_shown(earlier, documents), options, cites=documents is not None,
                                 added=documents.added if documents is not None else "")
        self.history.add_message(conversation_id, "user", question)
        recorder = AnswerRecorder(self.history, conversation_id, emit, reading_label(documents, earlier))
        try:
            answer = self._generate(prepared, recorder, is_cancelled or (lambda: False), started)
        except Exception as e:
            recorder.finish("error", {"error": str(e)})
            raise
        answer = replace(answer, conversation_id=conversation_id)
        if documents is not None:
            answer = replace(answer, sources=documents.sources, context=documents.text, notice=documents.note)
        meta = stored_meta(answer)
        if documents is not None:  # what the next question in this conversation keeps first (documents_given)
            meta.update(collection=options.collection, context=documents.text, base=documents.in_system,
                        added=documents.added)
        recorder.finish("cancelled" if answer.stop_reason == "cancelled" else "complete", meta, answer.text)
        return answer

    def read_ahead(self, draft: str, *, conversation_id: int | None = None, options: AskOptions = AskOptions(),
                   is_cancelled: CancelFn | None = None, on_read: ReadFn | None = None) -> ReadAhead:
        """While `draft` is still being typed, read what asking it would read before its own words: the passages
        chosen for the draft, the instructions and the turns before. Nothing is written, and the question, when it is
        asked, gets the passages and prompt it would get anyway. This answerer reads nothing ahead."""
        return ReadAhead(skipped="This answerer does not read ahead.")

    def _draft(self, draft: str, conversation_id: int | None,
               options: AskOptions) -> tuple[AskOptions, list[StoredMessage], DocumentContext | None]:
        """What asking `draft` now would be given — the conversation's options, its messages, the documents —
        found as `ask` finds them, writing nothing."""
        if conversation_id is not None:
            options = self._conversation_options(conversation_id, options, save=False)
        else:
            options = replace(options, collection=options.collection or None)
        earlier = self.history.messages(conversation_id) if conversation_id is not None else []
        documents = self._documents(draft, earlier, options) if options.collection else None
        return options, earlier, documents

    def _conversation_options(self, conversation_id: int, options: AskOptions, save: bool = True) -> AskOptions:
        """The options as this conversation adds to them. A collection named with a question stays attached to
        its conversation: later questions use it too, until another one is named ("" detaches). `remember`
        goes into the conversation's settings (unless `save` is False)."""
        conversation = self.history.conversation(conversation_id)  # HistoryError when it does not exist
        attached = conversation.settings.get("collection") or None
        settings = {**conversation.settings, **dict(options.remember)}
        if options.collection is not None:
            settings["collection"] = options.collection or None
        if save and settings != conversation.settings:
            self.history.update_settings(conversation_id, settings)
        return replace(options, collection=attached if options.collection is None else options.collection or None)

    def _documents(self, question: str, earlier: list[StoredMessage], options: AskOptions) -> DocumentContext:
        """The collection's text for this question, sized to what the context window leaves free."""
        count_tokens, room = self._document_room(question, earlier, options)
        kept = documents_given(earlier, options.collection)
        # A follow-up ("and why?") is searched with the question before it, so the passages it already has
        # rank first and cost nothing to read again; what its own words add follows them.
        query = question if kept is None else joined(question_answer_pairs(earlier)[-1][0], question)
        return self.library.context(options.collection, query, count_tokens, max(0, room - DOCUMENT_MARGIN),
                                    kept=kept, read_within=(options.whole_collection_s, self._read_tok_s()))

    def _read_tok_s(self) -> float | None:
        """How fast this answerer reads a prompt, in tokens per second, when it knows (None: it does not)."""
        return None

    # -- what each answerer does its own way ----------------------------------------------------
    @abstractmethod
    def _get_ready(self) -> None:
        """Load the model or reach the server: what can fail before anything is written."""

    @abstractmethod
    def _document_room(self, question: str, earlier: list[StoredMessage],
                       options: AskOptions) -> tuple[Callable[[str], int], int]:
        """How to count tokens, and how many the documents may take beside the question and the answer."""

    @abstractmethod
    def _prepare(self, question: str, earlier: list[StoredMessage], options: AskOptions, cites: bool,
                 added: str = "") -> object:
        """The prompt for `question` after the `earlier` messages (as shown: `as_shown`); `cites`: it answers from
        numbered sources; `added`: the passages this question brings beyond the system prompt's
        (`with_passages`)."""

    @abstractmethod
    def _generate(self, prepared: object, recorder: AnswerRecorder, is_cancelled: CancelFn,
                  started: float) -> Answer:
        """Answer from what `_prepare` built, streaming into `recorder`; a stop returns stop_reason
        "cancelled". `started`: when the question was asked (the time to first token counts from there)."""
