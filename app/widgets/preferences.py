"""How answers are made: the longest answer, temperature, a system prompt and speculative decoding (applied from
the next question)."""
from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel,
                               QPlainTextEdit, QSpinBox, QVBoxLayout)

from engine import Settings


class PreferencesDialog(QDialog):
    def __init__(self, settings: Settings, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.settings = settings
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(16, 32_768)
        self.max_tokens.setSingleStep(128)
        self.max_tokens.setValue(settings.max_tokens)
        self.max_tokens.setSuffix(" tokens")
        self.max_tokens.setToolTip("The longest answer; thinking has its own budget (the slider)")
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(settings.temperature)
        self.temperature.setToolTip("0 always picks the likeliest word; higher is more varied")
        self.system_prompt = QPlainTextEdit(settings.system_prompt)
        self.system_prompt.setPlaceholderText("Optional instructions sent before every conversation")
        self.speculate = QCheckBox("Guess ahead from the prompt (speculative decoding)")
        self.speculate.setChecked(settings.speculate)
        self.speculate.setToolTip("Words the answer copies from the question or your documents are checked several "
                                  "at a time where that is faster on this computer; the answer is the same")
        self.whole_collection_s = QSpinBox()
        self.whole_collection_s.setRange(0, 3600)
        self.whole_collection_s.setSingleStep(10)
        self.whole_collection_s.setValue(settings.whole_collection_s)
        self.whole_collection_s.setSuffix(" s")
        self.whole_collection_s.setSpecialValueText("whenever it fits")
        self.whole_collection_s.setToolTip("A collection that fits the context is sent whole only if the model reads "
                                           "it within this time; otherwise the most relevant passages are sent")
        form = QFormLayout()
        form.addRow("Longest answer", self.max_tokens)
        form.addRow("Temperature", self.temperature)
        form.addRow("System prompt", self.system_prompt)
        form.addRow("Speed", self.speculate)
        form.addRow("Send a whole collection if read within", self.whole_collection_s)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Changes apply from the next question; the model stays loaded."))
        layout.addWidget(buttons)

    def chosen(self) -> Settings:
        return replace(self.settings, max_tokens=self.max_tokens.value(), temperature=self.temperature.value(),
                       system_prompt=self.system_prompt.toPlainText().strip(), speculate=self.speculate.isChecked(),
                       whole_collection_s=self.whole_collection_s.value())
