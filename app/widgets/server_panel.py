"""The Server window: `ponder serve` from the app — a switch, the address, requests served, tokens/s, the log."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QDialog, QFormLayout, QHBoxLayout, QLabel, QPlainTextEdit, QSpinBox,
                               QVBoxLayout)

from app.bridge import Bridge
from engine import Failure, Progress, ServeSettings

REFRESH_MS = 1000


class ServerPanel(QDialog):
    """Start and stop the server; while it runs, its address, counts and log refresh every second."""

    changed = Signal()  # started or stopped (tests wait on it)

    def __init__(self, bridge: Bridge, model: str | None = None, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Server")
        self.bridge, self.model = bridge, model
        self.switch = QCheckBox("Serve the model to other programs (OpenAI-compatible API)")
        self.port = QSpinBox()
        self.port.setRange(0, 65535)
        self.port.setValue(1234)
        self.parallel = QSpinBox()
        self.parallel.setRange(0, 16)
        self.parallel.setSpecialValueText("measure")
        self.address = QLabel("Stopped")
        self.address.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.requests = QLabel("0")
        self.speed = QLabel("0 tok/s")
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.port)
        row.addWidget(QLabel("requests at once"))
        row.addWidget(self.parallel)
        form.addRow("Port", row)
        form.addRow("Address", self.address)
        form.addRow("Requests served", self.requests)
        form.addRow("Tokens/s", self.speed)
        layout = QVBoxLayout(self)
        layout.addWidget(self.switch)
        layout.addLayout(form)
        layout.addWidget(self.log_view, 1)
        self.switch.toggled.connect(self._toggle)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.refresh)
        self._timer.start(REFRESH_MS)
        self.refresh()
        self.switch.setChecked(bridge.server is not None)

    def _toggle(self, on: bool) -> None:
        if on == (self.bridge.server is not None):
            return
        self.switch.setEnabled(False)
        if on:
            self.address.setText("Starting…")
            settings = ServeSettings(port=self.port.value(), model=self.model, parallel=self.parallel.value() or None)
            self.bridge.start_server(settings, on_done=self._started, on_failed=self._failed,
                                     on_event=self._progress)
        else:
            self.bridge.stop_server(on_done=lambda _r: self._settled(), on_failed=self._failed)

    def _progress(self, event) -> None:
        if isinstance(event, Progress):
            self.address.setText(f"{event.label} {event.done:.0%}")

    def _started(self, _url) -> None:
        self._settled()

    def _failed(self, failure: Failure) -> None:
        self.log_view.appendPlainText(failure.message)
        self._settled()

    def _settled(self) -> None:
        self.switch.blockSignals(True)
        self.switch.setChecked(self.bridge.server is not None)
        self.switch.blockSignals(False)
        self.switch.setEnabled(True)
        self.port.setEnabled(self.bridge.server is None)
        self.parallel.setEnabled(self.bridge.server is None)
        self.refresh()
        self.changed.emit()

    def refresh(self) -> None:
        status = self.bridge.server_status()
        if status is None:
            if self.switch.isEnabled():
                self.address.setText("Stopped")
            return
        self.address.setText(f"{status['url']}  ({status['model']}, {status['slots']} at once)")
        self.requests.setText(f"{status['requests']:,}" + (f", {status['active']} running" if status["active"] else "")
                              + (f", {status['queued']} waiting" if status["queued"] else ""))
        self.speed.setText(f"{status['tok_s']:.1f} tok/s")
        lines = status["log"]
        if lines != getattr(self, "_shown", None):
            self._shown = lines
            self.log_view.setPlainText("\n".join(lines))
            self.log_view.verticalScrollBar().setValue(self.log_view.verticalScrollBar().maximum())
