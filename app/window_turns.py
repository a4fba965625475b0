"""The main window's last turn, again: regenerate it, edit and resend its question, or think more about it."""
from __future__ import annotations

from dataclasses import replace

from app.bridge import Job
from app.widgets.chat_view import AnswerWidget
from engine import ThinkingRequest


class TurnsMixin:
    """Mixed into MainWindow: uses its bridge, chat view, composer, answer state and `send`."""

    def _last_turn(self, then) -> None:
        """Remove the last question and answer from history, then `then(question)`."""
        cid = self.conversation_id
        if cid is None or self.answer_job is not None:
            return

        def done(question):
            if question:
                self.chat.remove_last_turn()
                then(question)
        self.bridge.drop_last_turn(cid, on_done=done, on_failed=lambda f: self.show_error(f.message))

    def regenerate(self) -> None:
        self._last_turn(self.send)

    def edit_last(self) -> None:
        """Put the last question in the composer; sending replaces the last turn, Esc gives up (nothing is
        removed until the edited question is sent)."""
        cid = self.conversation_id
        if cid is None or self.answer_job is not None:
            return

        def edit(turn) -> None:
            if not turn or cid != self.conversation_id:
                return
            question = turn[0].content
            self._editing = cid
            self.composer.edit.setPlainText(question)
            self.composer.edit.setFocus()
            self.status.showMessage("Editing the last question: Enter sends it in place of the old one, "
                                         "Esc gives up")
        self.bridge.read("Reading the last question", lambda b: b.history.last_turn(cid), on_done=edit)

    def think_more(self, first: AnswerWidget) -> Job | None:
        """Ask the question `first` answers again one stop up the slider and show the new answer beside it. The
        conversation goes on from the new answer; a stopped or failed one leaves `first` in place. The slider
        keeps its setting for the next question."""
        cid = self.conversation_id
        enabled, why = self.chat.think_more_state(first)
        if not enabled or cid is None or self.answer_job is not None:
            self.status.showMessage(why, 5000)
            return None
        budget = first.next_budget()
        self.error_row.setVisible(False)
        self._start_answer(self.chat.compare(first, budget), retry_of=first)
        options = replace(self.options(), thinking=ThinkingRequest(budget))
        self.answer_job = self.bridge.ask_again(cid, options, on_event=self._on_answer_event,
                                                on_done=self._on_answer, on_failed=self._on_answer_failed)
        return self.answer_job

    def think_more_on_last(self) -> None:
        if self.chat.kept is not None:
            self.think_more(self.chat.kept)

    def _kept_after_retry(self, first: AnswerWidget | None, replaced: bool) -> None:
        """After Think more: the conversation goes on from the new answer, or (stopped, failed) from `first`."""
        if first is not None and not replaced and first in self.chat.answers:
            self.chat.keep(first)
            self.status.showMessage("Think more did not finish: the conversation goes on from the first "
                                         "answer.", 8000)
