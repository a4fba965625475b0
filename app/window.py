"""The main window: wires the sidebar, chat view, composer, documents panel and models dialog to the bridge.

Each side of the window is its own module, mixed in here: answering (`window_answers.py`), the last turn again
(`window_turns.py`), conversations (`window_conversations.py`), documents (`window_documents.py`) and models
(`window_models.py`); the menus are `menus.py`. This file builds the window, connects the pieces and keeps its
state across restarts.
"""
from __future__ import annotations

import logging

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QHBoxLayout, QMainWindow, QSplitter, QVBoxLayout, QWidget

from app.bridge import Bridge, Job
from app.menus import add_menus
from app.style import MAX_LINE_PX
from app.window_answers import AnswersMixin
from app.window_conversations import ConversationsMixin
from app.window_documents import WATCH_EVERY_MS, DocumentsMixin
from app.window_models import ModelsMixin
from app.window_turns import TurnsMixin
from app.widgets.chat_view import AnswerWidget, ChatView
from app.widgets.composer import Composer
from app.widgets.documents import DocumentsDock, DocumentsPanel
from app.widgets.error_bar import ErrorBar
from app.widgets.preferences import PreferencesDialog
from app.widgets.sidebar import Sidebar
from app.widgets.status_bar import StatusBar, Streamed
from engine import ModelInfo, PonderError, Settings, config_dir, load_endpoints, read_json, write_json_atomic

log = logging.getLogger(__name__)


class MainWindow(ModelsMixin, TurnsMixin, AnswersMixin, ConversationsMixin, DocumentsMixin, QMainWindow):
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
        self.sidebar = Sidebar()
        self.chat = ChatView()
        self.composer = Composer()
        self.error_row = ErrorBar()
        self.error_bar = self.error_row.message
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
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self.load_progress, self.model_label = self.status.load_progress, self.status.model_label
        self.speed_label, self.tokens_label = self.status.speed_label, self.status.tokens_label
        add_menus(self)
        self._connect()
        self.resize(1180, 760)

    def _connect(self) -> None:
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

    # -- first start ----------------------------------------------------------------------------
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

    # -- dialogs --------------------------------------------------------------------------------
    def open_preferences(self) -> None:
        dialog = PreferencesDialog(self.settings, self)

        def accepted() -> None:
            self.settings = dialog.chosen()
            self.save_settings()
        dialog.accepted.connect(accepted)
        self.preferences_dialog = dialog
        dialog.open()

    def open_server(self) -> None:
        """The Server window (`ponder serve` from the app), serving the model the settings name."""
        from app.widgets.server_panel import ServerPanel

        panel = getattr(self, "server_panel", None)
        if panel is None:
            panel = self.server_panel = ServerPanel(self.bridge, self.settings.model or None, self)
        panel.show()
        panel.raise_()

    # -- errors and closing ---------------------------------------------------------------------
    def show_error(self, message: str, detail: str = "") -> None:
        """A sentence above the chat (not a modal box: the app keeps working); details go to the clipboard."""
        if self._closing:
            return  # jobs cancelled by closing the window report "stopped"; nobody is there to read it
        log.warning("%s", message)
        self.error_row.show_error(message, detail)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._closing = True
        self.watch_timer.stop()
        self.save_state()
        self.bridge.shutdown()
        super().closeEvent(event)
