"""Where a question is written: the text box, the compute-budget slider, the documents choice, Send and Stop."""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QSlider, QVBoxLayout,
                               QWidget)

# The slider's stops: thinking tokens per question; None is Auto (the engine decides and stops early).
BUDGET_STOPS: tuple[int | None, ...] = (0, 128, 256, 512, 1024, 2048, 4096, 8192, None)
NO_DOCUMENTS = "No documents"
# A question with documents is read ahead once typing pauses this long: a pause between words (~300 ms at
# 40 words a minute) does not start a read that the next keystroke would make stale.
DRAFT_PAUSE_MS = 700


def budget_label(budget: int | None) -> str:
    if budget is None:
        return "Auto"
    if budget == 0:
        return "Off"
    return f"{budget // 1024}k" if budget >= 1024 else str(budget)


def next_budget(budget: int | None, used: int = 0) -> int | None:
    """Think more: the fixed stop above `budget` (Off→128→…→8k); after Auto, the smallest stop above the `used`
    tokens Auto spent. None past the last stop."""
    floor = used if budget is None else budget
    return next((b for b in BUDGET_STOPS if b is not None and b > floor), None)


def budget_to_setting(budget: int | None) -> str | int:
    """How a budget is kept in a conversation's settings (JSON has no None worth trusting)."""
    return "auto" if budget is None else budget


def budget_from_setting(value) -> int | None:
    if value == "auto":
        return None
    return value if isinstance(value, int) and value in BUDGET_STOPS else 0


class QuestionEdit(QPlainTextEdit):
    """Enter sends, Shift+Enter starts a new line, Esc stops the answer."""

    submitted = Signal()
    stop_requested = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self.insertPlainText("\n")
            else:
                self.submitted.emit()
            return
        if event.key() == Qt.Key.Key_Escape:
            self.stop_requested.emit()
            return
        super().keyPressEvent(event)


class BudgetSlider(QWidget):
    """Off, 128 … 8k, Auto: the thinking tokens the next question may spend."""

    changed = Signal(object)  # int | None

    def __init__(self) -> None:
        super().__init__()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, len(BUDGET_STOPS) - 1)
        self.slider.setPageStep(1)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setTickInterval(1)
        self.slider.setAccessibleName("Thinking budget")
        self.slider.setToolTip("Thinking tokens the model may spend before it answers (Auto stops when the "
                               "answer has settled)")
        self.value_label = QLabel()
        self.value_label.setMinimumWidth(44)
        ticks = QHBoxLayout()
        ticks.setContentsMargins(0, 0, 0, 0)
        for i, b in enumerate(BUDGET_STOPS):
            t = QLabel(budget_label(b))
            t.setProperty("role", "tick")
            ticks.addWidget(t, alignment=Qt.AlignmentFlag.AlignCenter)
            if i < len(BUDGET_STOPS) - 1:
                ticks.addStretch(1)
        column = QVBoxLayout()
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.slider)
        column.addLayout(ticks)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Thinking"))
        row.addLayout(column, 1)
        row.addWidget(self.value_label)
        self.slider.valueChanged.connect(self._moved)
        self.slider.setValue(BUDGET_STOPS.index(None))  # Auto: no thinking on easy questions, thought on hard ones

    def _moved(self, index: int) -> None:
        self.value_label.setText(budget_label(BUDGET_STOPS[index]))
        self.changed.emit(BUDGET_STOPS[index])

    def budget(self) -> int | None:
        return BUDGET_STOPS[self.slider.value()]

    def set_budget(self, budget: int | None) -> None:
        self.slider.setValue(BUDGET_STOPS.index(budget if budget in BUDGET_STOPS else None))


class Composer(QWidget):
    send = Signal(str)
    stop = Signal()
    draft_changed = Signal(str)  # typing paused on a question to answer from documents: its text so far

    def __init__(self) -> None:
        super().__init__()
        self.edit = QuestionEdit()
        self.edit.setPlaceholderText("Ask anything — Enter sends, Shift+Enter for a new line, Esc stops")
        self.edit.setFixedHeight(76)
        self.edit.setAccessibleName("Question")
        self.edit.setObjectName("question")
        self.edit.setTabChangesFocus(True)  # Tab moves on to the slider; Enter sends, Shift+Enter is a new line
        self.budget = BudgetSlider()
        self.documents = QComboBox()
        self.documents.setToolTip("Answer from a document collection (it stays attached to this conversation)")
        self.documents.addItem(NO_DOCUMENTS)
        self.documents.setAccessibleName("Documents to answer from")
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.send_button.setProperty("primary", True)
        self.send_button.setAccessibleName("Send question")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the answer (Esc)")
        self.stop_button.setAccessibleName("Stop the answer")
        self.stop_button.setEnabled(False)
        controls = QHBoxLayout()
        controls.addWidget(self.budget, 3)
        controls.addSpacing(12)
        controls.addWidget(self.documents, 1)
        controls.addWidget(self.stop_button)
        controls.addWidget(self.send_button)
        self.hint = QLabel()  # quiet: "Reading sources… 40%" while a draft is read ahead
        self.hint.setProperty("role", "hint")
        self.hint.setAccessibleName("Composer status")
        self.hint.setVisible(False)
        self._reads = 0  # read-aheads shown so far: only the latest one's end clears the hint
        self.draft_timer = QTimer(self)
        self.draft_timer.setSingleShot(True)
        self.draft_timer.setInterval(DRAFT_PAUSE_MS)
        self.draft_timer.timeout.connect(self._draft_paused)
        self.edit.textChanged.connect(self.draft_timer.start)
        self.documents.currentIndexChanged.connect(lambda _i: self.draft_timer.start())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 6, 16, 10)
        layout.addWidget(self.edit)
        layout.addLayout(controls)
        layout.addWidget(self.hint)
        self.edit.submitted.connect(self._submit)
        self.send_button.clicked.connect(self._submit)
        self.edit.stop_requested.connect(self.stop)
        self.stop_button.clicked.connect(self.stop)

    def _submit(self) -> None:
        text = self.edit.toPlainText().strip()
        if text and self.send_button.isEnabled():
            self.send.emit(text)

    def _draft_paused(self) -> None:
        text = self.edit.toPlainText().strip()
        if text and self.collection() and self.send_button.isEnabled():
            self.draft_changed.emit(text)

    def show_reading(self, job: QObject | None) -> None:
        """Say quietly, under the controls, that the sources of the question being typed are read (a bridge job's
        Progress events), until the job ends or a newer one is shown."""
        if job is None:
            return
        self._reads += 1
        n = self._reads  # the job is not captured: a job holding itself through its own signal is never freed
        self._say("Reading sources…")
        job.event.connect(lambda p: n == self._reads and getattr(p, "total", 0) and self._say(
            f"Reading sources… {100 * p.done // p.total:.0f}%"))
        job.finished.connect(lambda: n == self._reads and self._say(""))

    def _say(self, hint: str) -> None:
        self.hint.setText(hint)
        self.hint.setVisible(bool(hint))

    def set_answering(self, answering: bool) -> None:
        self.send_button.setEnabled(not answering)
        self.stop_button.setEnabled(answering)
        if answering:
            self.draft_timer.stop()

    def clear(self) -> None:
        self.edit.clear()

    def set_collections(self, names: list[str]) -> None:
        current = self.collection()
        self.documents.blockSignals(True)
        self.documents.clear()
        self.documents.addItem(NO_DOCUMENTS)
        self.documents.addItems(names)
        self.documents.blockSignals(False)
        self.set_collection(current)

    def collection(self) -> str:
        """The chosen collection, or "" for none."""
        text = self.documents.currentText()
        return "" if text == NO_DOCUMENTS or self.documents.currentIndex() <= 0 else text

    def set_collection(self, name: str | None) -> None:
        """Choose `name` ("" or None: no documents); a name not listed yet (being created) is added."""
        if name and self.documents.findText(name) < 0:
            self.documents.addItem(name)
        self.documents.setCurrentIndex(self.documents.findText(name) if name else 0)
