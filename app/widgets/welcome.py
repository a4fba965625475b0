"""The empty conversation: what Ponder is, the default model loading, and three questions to try that show what the
thinking slider is for."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from engine import Progress

# (button text, question). Asked with Auto: the fact needs no thinking, the word problem does, and the reasoning
# card under its answer shows what the thinking bought.
EXAMPLES = (
    ("An easy fact", "What is the capital of Australia?"),
    ("A word problem", "Two dogs each eat 300 grams of food a day. How many grams do they eat in a week?"),
)
FOLDER_EXAMPLE = ("Ask about a folder", "add one and answers cite the file and page…")


class Welcome(QWidget):
    """Shown while the conversation is empty. `example_chosen(question)` asks with Auto; `folder_requested` opens
    the documents panel."""

    example_chosen = Signal(str)
    folder_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("welcome")
        title = QLabel("Ask Ponder anything")
        title.setObjectName("welcomeTitle")
        intro = QLabel("Answers are made on this computer. The <b>Thinking</b> slider under the question sets how "
                       "long the model may reason first; on <b>Auto</b> Ponder decides per question.")
        intro.setWordWrap(True)
        intro.setProperty("role", "muted")
        self.loading = QLabel("")
        self.loading.setProperty("role", "muted")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(360)
        self.progress.setTextVisible(False)
        self.progress.setAccessibleName("Model loading")
        self.progress.setVisible(False)
        self.try_label = QLabel("Try one (asked with Auto):")
        self.try_label.setProperty("role", "heading")
        self.buttons: list[QPushButton] = []
        row = QVBoxLayout()
        row.setSpacing(8)
        for kind, question in EXAMPLES:
            b = self._example(kind, question)
            b.clicked.connect(lambda _=False, q=question: self.example_chosen.emit(q))
            row.addWidget(b)
        folder = self._example(*FOLDER_EXAMPLE)
        folder.clicked.connect(self.folder_requested)
        row.addWidget(folder)
        column = QVBoxLayout(self)
        column.setContentsMargins(8, 8, 8, 8)
        column.setSpacing(10)
        column.addWidget(title)
        column.addWidget(intro)
        column.addWidget(self.loading)
        column.addWidget(self.progress)
        column.addSpacing(6)
        column.addWidget(self.try_label)
        column.addLayout(row)

    def _example(self, kind: str, text: str) -> QPushButton:
        b = QPushButton(f"{kind}:  {text}")
        b.setProperty("role", "example")
        b.setAccessibleName(f"{kind}: {text}")
        b.setToolTip(text)
        b.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # a narrow window clips, never scrolls
        b.setCursor(Qt.CursorShape.PointingHandCursor)
        self.buttons.append(b)
        return b

    def follow_load(self, job) -> None:
        """Show a model loading (the bridge's job): its progress, then that it is ready."""
        self.loading.setText("Loading the model…")
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)

        def progress(event) -> None:
            if isinstance(event, Progress) and event.total > 0:
                self.progress.setRange(0, 1000)
                self.progress.setValue(int(1000 * event.done / event.total))
                self.loading.setText(f"{event.label} — {100 * event.done / event.total:.0f}%")

        def done(result) -> None:
            info, backend = result
            self.progress.setVisible(False)
            self.loading.setText(f"{info.name} is ready, on the {backend.name}. You can type as well.")

        def failed(_failure) -> None:
            self.progress.setVisible(False)
            self.loading.setText("The model could not be loaded (the message above says why); Models… "
                                 "(Ctrl+M) picks another.")
        job.event.connect(progress)
        job.done.connect(done)
        job.failed.connect(failed)
