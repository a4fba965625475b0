"""The main window's conversations: the sidebar's list, starting a new one, opening, renaming and deleting one."""
from __future__ import annotations

from app.widgets.composer import budget_from_setting


class ConversationsMixin:
    """Mixed into MainWindow: uses its bridge, sidebar, chat view, composer and show_error."""

    def refresh_conversations(self, open_current: bool = False) -> None:
        def done(found):
            conversations, repair = found
            if repair is not None:  # the history file was damaged: say so once, with where the copy is
                self.show_error(repair.message)
            ids = {c.id for c in conversations}
            if self.conversation_id not in ids:
                self.conversation_id = None
            self.sidebar.set_conversations(conversations, self.conversation_id)
            if open_current and self.conversation_id is not None:
                self.open_conversation(self.conversation_id)
        self.bridge.read("Listing conversations", lambda b: (b.history.conversations(), b.history.take_repair()),
                         on_done=done)

    def new_conversation(self) -> None:
        self._editing = None
        self.conversation_id = None
        self.answer_widget = None
        self.chat.clear()
        self.sidebar.select(None)
        self.composer.set_collection("")
        self.composer.edit.setFocus()

    def open_conversation(self, conversation_id: int) -> None:
        self._editing = None if conversation_id != self._editing else self._editing
        self.conversation_id = conversation_id
        self.answer_widget = None  # the view is rebuilt from history; a running answer goes on into history

        def done(result):
            conversation, messages = result
            if conversation.id != self.conversation_id:
                return
            self.chat.show_messages(messages)
            self.composer.budget.set_budget(budget_from_setting(conversation.settings.get("budget", "auto")))
            self.composer.set_collection(conversation.settings.get("collection") or "")
        self.bridge.read("Opening conversation", lambda b: (b.history.conversation(conversation_id),
                                                            b.history.messages(conversation_id)),
                         on_done=done, on_failed=lambda f: self.show_error(f.message))

    def _rename(self, conversation_id: int, title: str) -> None:
        self.bridge.read("Renaming", lambda b: b.history.rename(conversation_id, title),
                         on_done=lambda _r: self.refresh_conversations())

    def _delete(self, conversation_id: int) -> None:
        if conversation_id == self._answering_in:
            self.show_error("That conversation is being answered; stop the answer first.")
            return
        if conversation_id == self.conversation_id:
            self.new_conversation()
        self.bridge.read("Deleting", lambda b: b.history.delete(conversation_id),
                         on_done=lambda _r: self.refresh_conversations())
