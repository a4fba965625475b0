"""Document collections: create, add files or folders (dialog or drag-and-drop), indexing progress with time
left and Cancel, and the files that could not be read."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QHBoxLayout, QInputDialog, QLabel, QListWidget,
                               QListWidgetItem, QMessageBox, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from engine import CollectionSummary, IndexReport, Progress


EMPTY = ("No collections yet. Add a folder or files (or drop them here); then choose the collection under the "
         "question, and answers cite the file and page they came from.")


def time_left(started: float, done: float, total: float, now: float | None = None) -> str:
    """'about 12 s left' from the rate so far; '' until there is a rate worth quoting."""
    elapsed = (now or time.monotonic()) - started
    if done <= 0 or total <= 0 or elapsed < 1.0:
        return ""
    left = elapsed * (total - done) / done
    if left < 1:
        return "almost done"
    return f"about {left:.0f} s left" if left < 90 else f"about {left / 60:.0f} min left"


class DocumentsPanel(QWidget):
    """Asks the window (through signals) to index; shows what the bridge reports back."""

    index_requested = Signal(str, list)  # collection, paths ([] re-checks its folders)
    cancel_requested = Signal()
    remove_requested = Signal(str)
    selected = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setAcceptDrops(True)
        self.collections = QListWidget()
        self.collections.setAccessibleName("Collections")
        self.new_button = QPushButton("New…")
        self.files_button = QPushButton("Add files…")
        self.folder_button = QPushButton("Add folder…")
        self.recheck_button = QPushButton("Re-check")
        self.recheck_button.setToolTip("Index what changed in the collection's files and folders")
        self.remove_button = QPushButton("Remove")
        self.phase = QLabel(EMPTY)
        self.phase.setProperty("role", "muted")
        self.phase.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.problems = QListWidget()
        self.problems.setAccessibleName("Files that could not be read")
        self.problems_label = QLabel("Files that could not be read")
        self.problems_label.setProperty("role", "heading")
        self.problems.setVisible(False)  # until a file could not be read
        self.problems_label.setVisible(False)
        buttons = QHBoxLayout()
        for b in (self.new_button, self.files_button, self.folder_button):
            buttons.addWidget(b)
        buttons2 = QHBoxLayout()
        buttons2.addWidget(self.recheck_button)
        buttons2.addWidget(self.remove_button)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        heading = QLabel("Collections")
        heading.setProperty("role", "heading")
        layout.addWidget(heading)
        layout.addWidget(self.collections, 2)
        layout.addLayout(buttons)
        layout.addLayout(buttons2)
        layout.addWidget(self.phase)
        layout.addLayout(progress_row)
        layout.addWidget(self.problems_label)
        layout.addWidget(self.problems, 1)
        self.new_button.clicked.connect(self._new)
        self.files_button.clicked.connect(self._add_files)
        self.folder_button.clicked.connect(self.add_folder)
        self.recheck_button.clicked.connect(lambda: self._index([]))
        self.remove_button.clicked.connect(self._remove)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.collections.currentItemChanged.connect(self._changed)
        self._phase_started: tuple[str, float] = ("", 0.0)
        self._update_buttons()

    # -- what the person does -------------------------------------------------------------------
    def current(self) -> str:
        item = self.collections.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else ""

    def _changed(self, *_args) -> None:
        self._update_buttons()
        if self.current():
            self.selected.emit(self.current())

    def _update_buttons(self) -> None:
        has = bool(self.current())
        for b in (self.recheck_button, self.remove_button):
            b.setEnabled(has)

    def _new(self) -> str:
        name, ok = QInputDialog.getText(self, "New collection", "Name:", text="Documents")
        name = name.strip()
        if not ok or not name:
            return ""
        self._select_or_add(name)
        return name

    def _target(self) -> str:
        return self.current() or self._new()

    def _add_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add files", str(Path.home()),
                                                "Documents (*.txt *.md *.pdf *.docx *.epub *.html *.htm *.rst *.py "
                                                "*.js *.ts *.c *.h *.cpp *.rs *.go *.java *.json *.csv);;All files (*)")
        if paths and (name := self._target()):
            self.index_requested.emit(name, paths)

    def add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add folder", str(Path.home()))
        if folder and (name := self._target()):
            self.index_requested.emit(name, [folder])

    def _index(self, paths: list[str]) -> None:
        if self.current():
            self.index_requested.emit(self.current(), paths)

    def _remove(self) -> None:
        name = self.current()
        if name and QMessageBox.question(self, "Remove collection", f"Remove the index of “{name}”? Your files stay "
                                         "where they are.") == QMessageBox.StandardButton.Yes:
            self.remove_requested.emit(name)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths and (name := self._target()):
            event.acceptProposedAction()
            self.index_requested.emit(name, paths)

    # -- what the bridge reports ----------------------------------------------------------------
    def _select_or_add(self, name: str) -> None:
        for i in range(self.collections.count()):
            if self.collections.item(i).data(Qt.ItemDataRole.UserRole) == name:
                self.collections.setCurrentRow(i)
                return
        item = QListWidgetItem(f"{name} — new")
        item.setData(Qt.ItemDataRole.UserRole, name)
        self.collections.addItem(item)
        self.collections.setCurrentItem(item)

    def set_collections(self, collections: list[CollectionSummary]) -> None:
        current = self.current()
        self.collections.blockSignals(True)
        self.collections.clear()
        for c in collections:
            vectors = "" if c.embedded >= c.chunks else f", {c.embedded:,} with vectors"
            item = QListWidgetItem(f"{c.name} — {c.files:,} files, {c.chunks:,} passages{vectors}")
            item.setData(Qt.ItemDataRole.UserRole, c.name)
            item.setToolTip("\n".join(c.roots))
            self.collections.addItem(item)
        self.collections.blockSignals(False)
        if current:
            self._select_or_add(current)
        if not collections and not self.progress.isVisible():
            self.phase.setText(EMPTY)
        self._update_buttons()

    def indexing_started(self, name: str) -> None:
        self._select_or_add(name)
        self.phase.setText(f"Indexing {name}…")
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.cancel_button.setEnabled(True)
        self._phase_started = ("", time.monotonic())

    def indexing_progress(self, p: Progress) -> None:
        phase = "Embedding" if p.label == "Embedding" else "Reading"
        if phase != self._phase_started[0]:
            self._phase_started = (phase, time.monotonic())
        if p.total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * p.done / p.total))
        left = time_left(self._phase_started[1], p.done, p.total)
        unit = "passages" if phase == "Embedding" else "files"
        self.phase.setText(f"{p.label}: {p.done:,.0f} of {p.total:,.0f} {unit}" + (f" · {left}" if left else ""))

    def indexing_finished(self, report: IndexReport | None, message: str = "") -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        if report is None:
            self.phase.setText(message)
            return
        r = report
        parts = [f"{r.indexed} files indexed", f"{r.unchanged} unchanged"]
        if r.deleted:
            parts.append(f"{r.deleted} removed")
        if r.skipped:
            parts.append(f"{len(r.skipped)} could not be read")
        head = "Stopped" if r.cancelled else "Done"
        self.phase.setText(f"{head}: {', '.join(parts)}; {r.chunks:,} passages, {r.embedded:,} embedded in "
                           f"{r.seconds:.1f} s.")
        self.set_problems(r.skipped)

    def set_problems(self, problems: list[tuple[str, str]]) -> None:
        self.problems.clear()
        for path, reason in problems:
            item = QListWidgetItem(f"{Path(path).name}: {reason}")
            item.setToolTip(path)
            self.problems.addItem(item)
        self.problems_label.setText(f"Files that could not be read ({len(problems)})" if problems
                                    else "Every file could be read.")
        self.problems.setVisible(bool(problems))
        self.problems_label.setVisible(True)


class DocumentsDock(QDockWidget):
    """The Documents panel's dock; closing it with its own button is the person's choice, remembered."""

    closed = Signal()

    def closeEvent(self, event) -> None:
        super().closeEvent(event)
        self.closed.emit()
