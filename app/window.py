"""The main window: wires the sidebar, chat view, composer, documents panel and models dialog to the bridge."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QHBoxLayout, QLabel, QMainWindow, QProgressBar, QPushButton, QSplitter,
                               QVBoxLayout, QWidget)

from app.bridge import Bridge, Job
from app.logs import add_help_menu
from app.style import MAX_LINE_PX
from app.window_models import ModelsMixin
from app.window_turns import TurnsMixin
from app.widgets.chat_view import THINK_MORE_KEYS, AnswerWidget, ChatView, ContextDialog
from app.widgets.composer import Composer, budget_from_setting, budget_to_setting
from app.widgets.documents import DocumentsPanel
from app.widgets.markdown import LINK_ROOTS
from app.widgets.preferences import PreferencesDialog
from engine import (Answer, AskOptions, ConversationStarted, Failure, IndexReport, ModelInfo, PonderError, Progress,
                    SamplingSettings, Settings, ThinkingRequest, Token, config_dir, load_endpoints, read_json,
                    write_json_atomic)

log = logging.getLogger(__name__)
WATCH_EVERY_MS = 10_000  # how often the collections' folders are checked for changes while the app runs


@dataclass(slots=True)
class Streamed:
    """What the running answer has streamed so far: the status bar's counts and speed."""

    thinking: int = 0
    answer: int = 0
    first: float = 0.0  # perf_counter() of the first and the last token
    last: float = 0.0

    @property
    def tokens(self) -> int:
        return self.thinking + self.answer

    def add(self, kind: str) -> None:
        if kind == "thinking":
            self.thinking += 1
        else:
            self.answer += 1
        self.last = time.perf_counter()
        self.first = self.first or self.last


class DocumentsDock(QDockWidget):
    """The Documents panel's dock; closing it with its own button is the person's choice, remembered."""

    closed = Signal()

    def closeEvent(self, event) -> None:
        super().closeEvent(event)
        self.closed.emit()


class MainWindow(ModelsMixin, TurnsMixin, QMainWindow):
    def __init__(self, bridge: Bridge | None = None, settings: Settings | None = None, persist: bool = True) -> None:
        """`persist=False`: a window for checks and benchmarks that leaves the person's settings and window
        state as they were."""
        super().__init__()
        self.persist = persist
        self.setWindowTitle("Ponder")
        self.bridge = bridge or Bridge()
        self.settings = settings or Settings.load()
        self.conversation_id: int | None = None
        self.model_info: ModelInfo | None = None
        self.backend_name = "not known until a model loads"
        self.answer_job: Job | None = None
        self.index_job: Job | None = None
        self.download_job: Job | None = None
        self.answer_widget: AnswerWidget | None = None
        self._retry_of: AnswerWidget | None = None  # the first answer, while Think more writes another beside it
        self._answering_in: int | None = None  # the conversation the running answer belongs to
        self.streamed = Streamed()
        self._closing = False
        self._editing: int | None = None  # the conversation whose last question is being edited
        self._build()
        self._restore_state()
        self.watch_timer = QTimer(self)
        self.watch_timer.setInterval(WATCH_EVERY_MS)
        self.watch_timer.timeout.connect(self._watch_folders)
        self.watch_timer.start()

    # -- building -------------------------------------------------------------------------------
    def _build(self) -> None:
        from app.widgets.sidebar import Sidebar

        self.sidebar = Sidebar()
        self.chat = ChatView()
        self.composer = Composer()
        self.error_bar = QLabel()
        self.error_bar.setWordWrap(True)
        self.error_bar.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_bar.setObjectName("errorBar")
        dismiss = QPushButton("Dismiss")
        dismiss.setFlat(True)
        self.copy_details = QPushButton("Copy details")
        self.copy_details.setFlat(True)
        self.copy_details.clicked.connect(lambda: QGuiApplication.clipboard().setText(self._error_detail))
        self._error_detail = ""
        self.error_row = QWidget()
        row = QHBoxLayout(self.error_row)
        row.setContentsMargins(8, 4, 8, 0)
        row.addWidget(self.error_bar, 1)
        row.addWidget(self.copy_details)
        row.addWidget(dismiss)
        self.error_row.setVisible(False)
        dismiss.clicked.connect(lambda: self.error_row.setVisible(False))
        centre = QWidget()
        column = QVBoxLayout(centre)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.error_row)
        column.addWidget(self.chat, 1)
        below = QHBoxLayout()  # the composer under the conversation's column, as wide as it
        self.composer.setMaximumWidth(MAX_LINE_PX)
        below.addWidget(self.composer)
        column.addLayout(below)
        splitter = QSplitter()
        splitter.setHandleWidth(1)
        splitter.addWidget(self.sidebar)
        splitter.addWidget(centre)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([220, 760])
        self.setCentralWidget(splitter)
        self.documents = DocumentsPanel()
        self.documents_dock = DocumentsDock("Documents")
        self.documents_dock.setObjectName("documents")
        self.documents_dock.setWidget(self.documents)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.documents_dock)
        self.documents_dock.setVisible(False)  # space goes to the conversation until there are documents
        self.documents_chosen: bool | None = None  # shown or hidden by the person (remembered), else None
        self.documents_dock.closed.connect(lambda: setattr(self, "documents_chosen", False))
        self._build_status_bar()
        self._build_menus()
        self.sidebar.new_requested.connect(self.new_conversation)
        self.sidebar.selected.connect(self.open_conversation)
        self.sidebar.rename_requested.connect(self._rename)
        self.sidebar.delete_requested.connect(self._delete)
        self.composer.send.connect(self.send)
        self.composer.stop.connect(self.stop)
        self.composer.draft_changed.connect(self.read_ahead)
        self.chat.show_context.connect(self._show_context)
        self.chat.think_more.connect(self.think_more)
        self.documents.index_requested.connect(self.index)
        self.documents.cancel_requested.connect(lambda: self.index_job and self.index_job.cancel())
        self.documents.remove_requested.connect(self._remove_collection)
        self.documents.selected.connect(self._show_problems)
        self.sidebar.documents_requested.connect(lambda: self.show_documents(not self.documents_dock.isVisible()))
        self.chat.empty.example_chosen.connect(self.ask_example)
        self.chat.empty.folder_requested.connect(self.ask_about_folder)
        self.resize(1180, 760)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.load_progress = QProgressBar()
        self.load_progress.setMaximumWidth(180)
        self.load_progress.setVisible(False)
        self.model_label = QLabel("No model loaded")
        self.speed_label = QLabel()
        self.tokens_label = QLabel()
        bar.addWidget(self.load_progress)
        for label in (self.tokens_label, self.speed_label, self.model_label):
            bar.addPermanentWidget(label)

    def open_server(self) -> None:
        """The Server window (`ponder serve` from the app), serving the model the settings name."""
        from app.widgets.server_panel import ServerPanel

        panel = getattr(self, "server_panel", None)
        if panel is None:
            panel = self.server_panel = ServerPanel(self.bridge, self.settings.model or None, self)
        panel.show()
        panel.raise_()

    def _build_menus(self) -> None:
        def action(menu, text, slot, keys=None):
            a = QAction(text, self)
            if keys is not None:
                a.setShortcut(QKeySequence(keys))
            a.triggered.connect(slot)
            menu.addAction(a)
            return a

        m = self.menuBar().addMenu("&File")
        action(m, "New conversation", self.new_conversation, QKeySequence.StandardKey.New)
        action(m, "Models…", self.open_models, "Ctrl+M")
        action(m, "Server…", self.open_server)
        action(m, "Preferences…", self.open_preferences, QKeySequence.StandardKey.Preferences)
        m.addSeparator()
        action(m, "Quit", self.close, QKeySequence.StandardKey.Quit)
        m = self.menuBar().addMenu("&Conversation")
        action(m, "Stop answer", self.stop, "Ctrl+.")
        action(m, "Regenerate last answer", self.regenerate, "Ctrl+R")
        action(m, "Edit and resend last question", self.edit_last, "Ctrl+E")
        action(m, "Think more on the last answer", self.think_more_on_last, THINK_MORE_KEYS)
        action(m, "Focus question", lambda: self.composer.edit.setFocus(), "Ctrl+L")
        m = self.menuBar().addMenu("&View")
        toggle = self.documents_dock.toggleViewAction()
        toggle.setShortcut(QKeySequence("Ctrl+D"))
        toggle.triggered.connect(lambda shown: setattr(self, "documents_chosen", shown))
        m.addAction(toggle)
        add_help_menu(self)  # Help › Show log (app/logs.py)

    # -- state that survives a restart ----------------------------------------------------------
    def _state_path(self):
        return config_dir() / "window.json"

    def _restore_state(self) -> None:
        state = read_json(self._state_path(), {})
        if isinstance(state, dict):
            if state.get("geometry"):
                self.restoreGeometry(QByteArray.fromHex(state["geometry"].encode()))
            if state.get("dock"):
                self.restoreState(QByteArray.fromHex(state["dock"].encode()))
            self.conversation_id = state.get("conversation") or None
            self.documents_chosen = state.get("documents")
            self.documents_dock.setVisible(bool(self.documents_chosen))

    def save_state(self) -> None:
        if not self.persist:
            return
        try:
            write_json_atomic(self._state_path(), {"geometry": bytes(self.saveGeometry().toHex()).decode(),
                                                   "dock": bytes(self.saveState().toHex()).decode(),
                                                   "conversation": self.conversation_id,
                                                   "documents": self.documents_chosen})
        except PonderError as e:  # a full disk or read-only folder must not stop the window closing
            log.warning("%s", e.message)

    def start(self) -> None:
        """First start: load the model in the background; the window is usable at once."""
        self.refresh_conversations(open_current=True)
        self.refresh_collections()
        def chosen(remote) -> None:
            self.use_remote(remote) if remote is not None else self.load_model(self.settings)
        wanted = self.settings.remote
        self.bridge.read("Reading servers", lambda b: next((e for e in load_endpoints() if e.url == wanted), None)
                         if wanted else None, on_done=chosen)

    def load_model(self, settings: Settings) -> Job:
        job = super().load_model(settings)
        self.chat.empty.follow_load(job)  # the first start shows the model loading where the person looks
        return job

    def ask_example(self, question: str) -> Job | None:
        """A first-start example: asked with Auto, so the reasoning card shows what Auto chose and why."""
        self.composer.budget.set_budget(None)
        return self.send(question)

    def show_documents(self, shown: bool = True) -> None:
        self.documents_chosen = shown
        self.documents_dock.setVisible(shown)
        if shown:
            self.documents.collections.setFocus()

    def ask_about_folder(self) -> None:
        self.show_documents()
        self.documents.add_folder()

    def open_preferences(self) -> None:
        dialog = PreferencesDialog(self.settings, self)

        def accepted() -> None:
            self.settings = dialog.chosen()
            self.save_settings()
        dialog.accepted.connect(accepted)
        self.preferences_dialog = dialog
        dialog.open()

    # -- conversations --------------------------------------------------------------------------
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
            self.composer.budget.set_budget(budget_from_setting(conversation.settings.get("budget", 0)))
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

    # -- asking ---------------------------------------------------------------------------------
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
            self.statusBar().clearMessage()
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
            self.statusBar().clearMessage()

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
        s = self.streamed
        s.add(event.kind)
        if self.answer_widget is not None:
            self.answer_widget.add_token(event.text, event.kind)
        if s.tokens > 1 and s.last > s.first:
            self.speed_label.setText(f"{(s.tokens - 1) / (s.last - s.first):.1f} tok/s")
        self.tokens_label.setText(f"thinking {s.thinking} · answer {s.answer}")

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
        u = answer.usage
        self.tokens_label.setText(f"thinking {u.thinking_tokens} · answer {u.answer_tokens}")
        self.speed_label.setText(f"{answer.timings.decode_tok_s:.1f} tok/s")
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

    # -- documents ------------------------------------------------------------------------------
    def refresh_collections(self) -> None:
        def done(collections):
            LINK_ROOTS[:] = [root for c in collections for root in c.roots]
            self.documents.set_collections(collections)
            self.composer.set_collections([c.name for c in collections])
            if self.documents_chosen is None and collections:
                self.documents_dock.setVisible(True)
        self.bridge.read("Listing collections", lambda b: b.library.collections(), on_done=done,
                         on_failed=lambda f: self.show_error(f.message))

    def index(self, collection: str, paths: list[str]) -> Job | None:
        if self.index_job is not None:
            self.show_error("A collection is being indexed; wait for it or cancel it first.")
            return None
        self.documents.indexing_started(collection)

        def done(report: IndexReport):
            self.index_job = None
            self.documents.indexing_finished(report)
            self.refresh_collections()
            if not self.composer.collection():
                self.composer.set_collection(collection)

        def failed(f: Failure):
            self.index_job = None
            self.documents.indexing_finished(None, f.message)
            self.refresh_collections()

        self.index_job = self.bridge.index(collection, paths or None, on_done=done, on_failed=failed,
                                           on_event=lambda p: isinstance(p, Progress)
                                           and self.documents.indexing_progress(p))
        return self.index_job

    def _remove_collection(self, name: str) -> None:
        self.bridge.read("Removing collection", lambda b: b.library.remove(name),
                         on_done=lambda _r: self.refresh_collections(), on_failed=lambda f: self.show_error(f.message))

    def _show_problems(self, name: str) -> None:
        self.bridge.read("Listing problems", lambda b: b.library.problems(name),
                         on_done=self.documents.set_problems)

    def _watch_folders(self) -> None:
        """Re-index collections whose files changed on disk (only while nothing else is indexing)."""
        if self.index_job is not None or self.bridge.is_busy("documents"):
            return

        def changed(names):
            if names and self.index_job is None:
                self.index(names[0], [])
        self.bridge.read("Watching folders", lambda b: [c.name for c in b.library.collections()
                                                        if b.library.pending(c.name)], on_done=changed)

    # -- errors and closing ---------------------------------------------------------------------
    def show_error(self, message: str, detail: str = "") -> None:
        """A sentence above the chat (not a modal box: the app keeps working); details go to the clipboard."""
        if self._closing:
            return  # jobs cancelled by closing the window report "stopped"; nobody is there to read it
        log.warning("%s", message)
        self.error_bar.setText(message)
        self._error_detail = detail
        self.copy_details.setVisible(bool(detail))
        self.error_row.setVisible(True)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._closing = True
        self.watch_timer.stop()
        self.save_state()
        self.bridge.shutdown()
        super().closeEvent(event)
