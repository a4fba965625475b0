"""The conversations: new, search, rename (F2), delete (Del)."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QInputDialog, QLabel, QLineEdit, QListWidget, QListWidgetItem, QMenu, QMessageBox,
                               QPushButton, QVBoxLayout, QWidget)

from engine import Conversation


class Sidebar(QWidget):
    new_requested = Signal()
    selected = Signal(int)  # conversation id
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)
    documents_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("sidebar")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)  # the style sheet paints its background
        brand = QLabel("Ponder")
        brand.setObjectName("brand")
        self.new_button = QPushButton("New conversation")
        self.new_button.setProperty("primary", True)
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search conversations")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget()
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.setAccessibleName("Conversations")
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.search.setAccessibleName("Search conversations")
        heading = QLabel("Conversations")
        heading.setProperty("role", "heading")
        self.empty = QLabel("None yet: your questions and answers are kept here, on this computer.")
        self.empty.setWordWrap(True)
        self.empty.setProperty("role", "muted")
        self.documents_button = QPushButton("Documents…")
        self.documents_button.setFlat(True)
        self.documents_button.setToolTip("Show or hide the document collections (Ctrl+D)")
        self.documents_button.clicked.connect(self.documents_requested)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 8, 8)
        layout.setSpacing(6)
        layout.addWidget(brand)
        layout.addWidget(self.new_button)
        layout.addWidget(self.search)
        layout.addWidget(heading)
        layout.addWidget(self.empty)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.documents_button, alignment=Qt.AlignmentFlag.AlignLeft)
        self.new_button.clicked.connect(self.new_requested)
        self.search.textChanged.connect(self._filter)
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.customContextMenuRequested.connect(self._menu)
        for keys, slot in ((QKeySequence.StandardKey.Delete, self.delete_current), (Qt.Key.Key_F2, self.rename_current)):
            action = QAction(self.list)
            action.setShortcut(QKeySequence(keys))
            action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            action.triggered.connect(slot)
            self.list.addAction(action)
        self._quiet = False

    def set_conversations(self, conversations: list[Conversation], current: int | None) -> None:
        self._quiet = True
        self.list.clear()
        for c in conversations:
            item = QListWidgetItem(c.title)
            item.setData(Qt.ItemDataRole.UserRole, c.id)
            item.setToolTip(c.title)
            self.list.addItem(item)
            if c.id == current:
                self.list.setCurrentItem(item)
        self._filter(self.search.text())
        self.empty.setVisible(not conversations)
        self._quiet = False

    def select(self, conversation_id: int | None) -> None:
        self._quiet = True
        self.list.setCurrentItem(None)
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == conversation_id:
                self.list.setCurrentRow(i)
        self._quiet = False

    def _filter(self, text: str) -> None:
        needle = text.casefold().strip()
        for i in range(self.list.count()):
            item = self.list.item(i)
            item.setHidden(bool(needle) and needle not in item.text().casefold())

    def _current_changed(self, item: QListWidgetItem | None, _previous) -> None:
        if item is not None and not self._quiet:
            self.selected.emit(item.data(Qt.ItemDataRole.UserRole))

    def _menu(self, pos) -> None:
        if self.list.itemAt(pos) is None:
            return
        menu = QMenu(self)
        menu.addAction("Rename…", self.rename_current)
        menu.addAction("Delete", self.delete_current)
        menu.exec(self.list.mapToGlobal(pos))

    def rename_current(self) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        title, ok = QInputDialog.getText(self, "Rename conversation", "Title:", text=item.text())
        if ok and title.strip():
            self.rename_requested.emit(item.data(Qt.ItemDataRole.UserRole), title.strip())

    def delete_current(self) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        answer = QMessageBox.question(self, "Delete conversation", f"Delete “{item.text()}” and all its messages?")
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_requested.emit(item.data(Qt.ItemDataRole.UserRole))
