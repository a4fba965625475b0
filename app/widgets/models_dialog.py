"""Installed models with their facts, importing a GGUF file, and how the model is loaded (GPU, context, threads)."""
from __future__ import annotations

from dataclasses import replace

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QProgressBar, QPushButton, QSpinBox, QTableWidget, QTableWidgetItem, QTabWidget,
                               QVBoxLayout, QWidget)

from app import style
from engine import AUTO_GPU_LAYERS, CatalogEntry, ModelEntry, Progress, RemoteEndpoint, Settings

COLUMNS = ("Model", "Source", "Architecture", "Parameters", "Quantization", "Context", "Thinking", "File")
CATALOG_COLUMNS = ("Model", "Kind", "Size", "Quantization", "Thinking", "Licence", "This computer")


def thinking_cell(thinking_format: str, has_template: bool) -> str:
    """How the model thinks, in the dialog's words: its own format (qwen3, harmony…), or "prompted" for a model
    with none, which Ponder asks to reason step by step before "Final answer:" (every model gets a budget)."""
    if thinking_format != "none":
        return f"native ({thinking_format})"
    return "prompted" if has_template else "prompted (base model)"


def entry_cells(e: ModelEntry) -> list[str]:
    i = e.info
    if i is None:
        return [e.name, e.source, e.problem, "", "", "", "", ""]
    return [e.name, e.source, i.architecture, i.size_label, i.quantization, f"{i.context_length:,}",
            thinking_cell(i.thinking_format, i.has_template), f"{i.file_size / 1e6:,.0f} MB"]


class ModelsDialog(QDialog):
    """Emits `import_requested(path)`; the window validates through the bridge and calls `import_failed`."""

    import_requested = Signal(str)
    download_requested = Signal(str)  # REPO/FILE
    cancel_download = Signal()
    remote_chosen = Signal(object, str)  # RemoteEndpoint, API key ("" keeps the saved one)
    remote_removed = Signal(str)  # url

    def __init__(self, entries: list[ModelEntry], settings: Settings, backend: str, loaded: str,
                 parent=None, catalog: list[tuple[CatalogEntry, bool, str]] | None = None,
                 remotes: list[RemoteEndpoint] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(860, 460)
        self.settings = settings
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.import_button = QPushButton("Import GGUF file…")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.ctx = QSpinBox()
        self.ctx.setRange(256, 262_144)
        self.ctx.setSingleStep(1024)
        self.ctx.setValue(settings.n_ctx)
        self.ctx.setSuffix(" tokens")
        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("automatic (physical cores)")
        self.threads.setValue(settings.n_threads)
        self.gpu_layers = QSpinBox()
        self.gpu_layers.setRange(AUTO_GPU_LAYERS, 999)  # its lowest value reads "automatic"
        self.gpu_layers.setSpecialValueText("automatic")
        self.gpu_layers.setValue(settings.n_gpu_layers)
        self.gpu_layers.setToolTip("-1: every layer on the GPU, 0: none, automatic: all when a GPU is found")
        form = QFormLayout()
        form.addRow("Backend", QLabel(f"<b>{backend}</b> · loaded: {loaded or 'nothing yet'}"))
        form.addRow("Context size", self.ctx)
        form.addRow("CPU threads", self.threads)
        form.addRow("GPU layers", self.gpu_layers)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.use_button = buttons.addButton("Use selected model", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        top = QHBoxLayout()
        top.addWidget(QLabel("Installed models"))
        top.addStretch(1)
        top.addWidget(self.import_button)
        installed = QWidget()
        column = QVBoxLayout(installed)
        column.addLayout(top)
        column.addWidget(self.table, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(installed, "Installed")
        self.tabs.addTab(self._catalog_tab(catalog or []), "Download")
        self.tabs.addTab(self._servers_tab(remotes or []), "Servers")
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.message)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.import_button.clicked.connect(self._import)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.entries: list[ModelEntry] = []
        self.set_entries(entries, settings.model)

    def _catalog_tab(self, catalog: list[tuple[CatalogEntry, bool, str]]) -> QWidget:
        """`catalog`: (entry, fits, why) rows, checked off the GUI thread."""
        self.catalog = [e for e, _fits, _why in catalog]
        self.catalog_table = QTableWidget(len(catalog), len(CATALOG_COLUMNS))
        self.catalog_table.setHorizontalHeaderLabels(CATALOG_COLUMNS)
        self.catalog_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.catalog_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.catalog_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.catalog_table.verticalHeader().setVisible(False)
        self.catalog_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.catalog_table.horizontalHeader().setStretchLastSection(True)
        for row, (e, fits, why) in enumerate(catalog):
            cells = [e.name, e.kind, f"{e.size_mb:,} MB", e.quantization, e.thinking, e.licence, why]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(e.ref if col == 0 else text)
                if col == len(cells) - 1 and not fits:
                    item.setForeground(style.item_foreground("error_text"))
                self.catalog_table.setItem(row, col, item)
        self.download_button = QPushButton("Download")
        self.download_progress = QProgressBar()
        self.download_progress.setVisible(False)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Stop for now; downloading again resumes where it stopped")
        self.pause_button.setVisible(False)
        self.download_button.clicked.connect(self._download)
        self.pause_button.clicked.connect(self.cancel_download)
        row = QHBoxLayout()
        row.addWidget(self.download_progress, 1)
        row.addWidget(self.pause_button)
        row.addWidget(self.download_button)
        tab = QWidget()
        column = QVBoxLayout(tab)
        column.addWidget(self.catalog_table, 1)
        column.addLayout(row)
        return tab

    def _servers_tab(self, remotes: list[RemoteEndpoint]) -> QWidget:
        """OpenAI-compatible servers (llama-server, vLLM, Ollama, LM Studio) to answer with instead."""
        self.servers = QListWidget()
        self.server_url = QLineEdit()
        self.server_url.setPlaceholderText("http://127.0.0.1:8080/v1")
        self.server_model = QLineEdit()
        self.server_model.setPlaceholderText("the first model the server lists")
        self.server_key = QLineEdit()
        self.server_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.server_key.setPlaceholderText("kept in the system keychain; empty keeps the saved one")
        self.server_prefilled = QCheckBox("The server's chat template opens the thinking span itself")
        form = QFormLayout()
        form.addRow("Address", self.server_url)
        form.addRow("Model", self.server_model)
        form.addRow("API key", self.server_key)
        form.addRow("", self.server_prefilled)
        self.use_server_button = QPushButton("Answer with this server")
        remove = QPushButton("Remove")
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(remove)
        row.addWidget(self.use_server_button)
        tab = QWidget()
        column = QVBoxLayout(tab)
        column.addWidget(QLabel("Saved servers"))
        column.addWidget(self.servers, 1)
        column.addLayout(form)
        column.addLayout(row)
        self.set_remotes(remotes)
        self.servers.currentItemChanged.connect(self._server_selected)
        self.use_server_button.clicked.connect(self._use_server)
        remove.clicked.connect(self._remove_server)
        return tab

    def set_remotes(self, remotes: list[RemoteEndpoint]) -> None:
        self.servers.clear()
        for e in remotes:
            item = QListWidgetItem(f"{e.url}" + (f" · {e.model}" if e.model else ""))
            item.setData(Qt.ItemDataRole.UserRole, e)
            self.servers.addItem(item)

    def _server_selected(self, item, _previous=None) -> None:
        if item is not None:
            e: RemoteEndpoint = item.data(Qt.ItemDataRole.UserRole)
            self.server_url.setText(e.url)
            self.server_model.setText(e.model)
            self.server_prefilled.setChecked(e.prefilled_think)
            self.server_key.clear()

    def _use_server(self) -> None:
        url = self.server_url.text().strip()
        if not url.startswith(("http://", "https://")):
            self.show_message("A server address starts with http:// or https://, e.g. http://127.0.0.1:8080/v1",
                              error=True)
            return
        self.show_message(f"Connecting to {url}…")
        self.remote_chosen.emit(RemoteEndpoint(url, self.server_model.text().strip(),
                                               self.server_prefilled.isChecked()), self.server_key.text())

    def _remove_server(self) -> None:
        item = self.servers.currentItem()
        if item is not None:
            self.remote_removed.emit(item.data(Qt.ItemDataRole.UserRole).url)
            self.servers.takeItem(self.servers.row(item))

    def _download(self) -> None:
        rows = self.catalog_table.selectionModel().selectedRows()
        if rows:
            entry = self.catalog[rows[0].row()]
            self.show_message(f"Downloading {entry.name} from {entry.repo}…")
            self.download_requested.emit(entry.ref)

    def download_started(self) -> None:
        self.tabs.setCurrentIndex(1)
        self.download_button.setEnabled(False)
        self.download_progress.setRange(0, 0)
        self.download_progress.setVisible(True)
        self.pause_button.setVisible(True)

    def download_progress_changed(self, p: Progress) -> None:
        if p.total > 0:
            self.download_progress.setRange(0, 1000)
            self.download_progress.setValue(int(1000 * p.done / p.total))
            self.download_progress.setFormat(f"{p.done / 1e6:,.0f} of {p.total / 1e6:,.0f} MB")

    def download_finished(self, message: str, error: bool = False) -> None:
        self.download_button.setEnabled(True)
        self.download_progress.setVisible(False)
        self.pause_button.setVisible(False)
        self.show_message(message, error)

    def set_entries(self, entries: list[ModelEntry], current: str) -> None:
        self.entries = entries
        self.table.setRowCount(len(entries))
        for row, e in enumerate(entries):
            for col, text in enumerate(entry_cells(e)):
                item = QTableWidgetItem(text)
                item.setToolTip("\n".join(filter(None, (e.description, e.path))) if col == 0 else text)
                self.table.setItem(row, col, item)
            if (current and current in (e.name, e.path)) or (not current and e.source == "default"):
                self.table.selectRow(row)

    def _selection_changed(self) -> None:
        e = self.selected_entry()
        self.use_button.setEnabled(e is not None and e.is_loadable)
        if e is not None and not e.is_loadable:
            self.show_message(e.problem, error=True)

    def selected_entry(self) -> ModelEntry | None:
        rows = self.table.selectionModel().selectedRows()
        return self.entries[rows[0].row()] if rows else None

    def _import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a model", str(Path.home()), "GGUF models (*.gguf);;"
                                              "All files (*)")
        if path:
            self.show_message(f"Checking {Path(path).name}…")
            self.import_requested.emit(path)

    def show_message(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setProperty("role", "error" if error else "")
        self.message.style().polish(self.message)

    def chosen_settings(self) -> Settings:
        """The settings with the selected model and the load options from the form: a built-in model by its name
        (the default one as "", so a new default follows), any other by its file."""
        e = self.selected_entry()
        model = "" if e is None or e.source == "default" else e.name if e.is_builtin else e.path
        s = replace(self.settings)
        s.model, s.n_ctx, s.n_threads, s.n_gpu_layers = model, self.ctx.value(), self.threads.value(), \
            self.gpu_layers.value()
        return s
