"""The main window's answering: a question sent through the bridge, its tokens streamed into the chat view and the
status bar, and how it ended (answered, stopped, failed)."""
from __future__ import annotations

from dataclasses import replace

from app.bridge import Job
from app.widgets.chat_view import AnswerWidget, ContextDialog
from app.widgets.composer import budget_to_setting
from app.widgets.status_bar import Streamed
from engine import Answer, AskOptions, ConversationStarted, Failure, Progress, SamplingSettings, ThinkingRequest, Token


class AnswersMixin:
    """Mixed into MainWindow: uses its bridge, settings, chat view, composer, status bar, error row and show_error."""

    def options(self) -> AskOptions:
        s = self.settings
        return AskOptions(max_tokens=s.max_tokens, system_prompt=s.system_prompt,
                          sampling=SamplingSettings(temperature=s.temperature),
                          thinking=ThinkingRequest(self.composer.budget.budget()),
                          collection=self.composer.collection(), speculate=s.speculate,
                          whole_collection_s=s.whole_collection_s or None)

    def send(self, question: str) -> Job | None:
        """Ask `question`; after Edit-and-resend it replaces the last turn (only once it is actually sent)."""
        if self.answer_job is not None:
            return None
        if self._editing is not None:
            editing, self._editing = self._editing, None
            self.status.clearMessage()
            if editing == self.conversation_id:
                self.composer.clear()
                self._last_turn(lambda _old: self.send(question))
                return None
        self.composer.clear()
        self.error_row.setVisible(False)
        self.chat.add_question(question)
        budget = self.composer.budget.budget()
        self._start_answer(self.chat.add_answer(budget))
        options = replace(self.options(), remember=(("budget", budget_to_setting(budget)),))
        self.answer_job = self.bridge.ask(
            question, self.conversation_id, options, on_event=self._on_answer_event, on_done=self._on_answer,
            on_failed=self._on_answer_failed)
        return self.answer_job

    def read_ahead(self, draft: str) -> Job | None:
        """Typing paused on a question with documents: its sources are read while the person goes on."""
        if self.model_info is None or self.answer_job is not None or self._editing is not None:
            return None
        job = self.bridge.read_ahead(draft, self.conversation_id, self.options())
        self.composer.show_reading(job)
        return job

    def _start_answer(self, widget: AnswerWidget, retry_of: AnswerWidget | None = None) -> None:
        self.answer_widget, self._retry_of = widget, retry_of
        self._answering_in = self.conversation_id
        self.streamed = Streamed()
        self.composer.set_answering(True)
        self.chat.set_answering(True)

    def stop(self) -> None:
        """Esc: stop the answer; with none running, give up editing the last question."""
        if self.answer_job is not None:
            self.answer_job.cancel()
        elif self._editing is not None:
            self._editing = None
            self.composer.clear()
            self.status.clearMessage()

    def _on_answer_event(self, event) -> None:
        if isinstance(event, ConversationStarted):
            self._answering_in = event.conversation_id
            if self.conversation_id is None:
                self.conversation_id = event.conversation_id
                self.refresh_conversations()
            return
        if isinstance(event, Progress):
            if self.answer_widget is not None:
                self.answer_widget.show_reading(event)
            return
        if not isinstance(event, Token):
            return
        self.streamed.add(event.kind)
        if self.answer_widget is not None:
            self.answer_widget.add_token(event.text, event.kind)
        self.status.streamed(self.streamed)

    def _answer_ended(self) -> None:
        self.answer_job = None
        self._retry_of = None
        self._answering_in = None
        self.composer.set_answering(False)
        self.chat.set_answering(False)
        self.chat.stop_streaming()

    def _on_answer(self, answer: Answer) -> None:
        widget, first = self.answer_widget, self._retry_of
        self._answer_ended()
        self.status.answered(answer)
        if widget is not None:
            widget.finish(answer)
            kept = first is None or answer.stop_reason != "cancelled"  # a stopped Think more put `first` back
            self._kept_after_retry(first, kept)
        elif answer.conversation_id == self.conversation_id:
            self.open_conversation(answer.conversation_id)  # its view was rebuilt while it streamed
        self.refresh_conversations()

    def _on_answer_failed(self, f: Failure) -> None:
        widget, cid, first = self.answer_widget, self._answering_in, self._retry_of
        self._answer_ended()
        if widget is not None:
            widget.fail(f.message)
            self._kept_after_retry(first, replaced=False)
        elif cid is not None and cid == self.conversation_id:
            self.open_conversation(cid)
        self.show_error(f.message, f.detail)

    def _show_context(self, widget: AnswerWidget) -> None:
        text = widget.prompt or widget.context
        ContextDialog(text or "This answer was made before Ponder kept the prompt.", self).open()
