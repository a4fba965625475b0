"""How answers, the first start and the documents panel present themselves: code blocks, source chips, the
welcome's examples, the Documents panel's place, keyboard reach and accessible names."""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication

from app.widgets.code_block import spans
from app.widgets.markdown import split_fences
from engine import Source


class FakeJob(QObject):
    """A bridge job's three signals, for a widget that follows one."""

    event = Signal(object)
    done = Signal(object)
    failed = Signal(object)


def test_fences_split_the_answer_and_an_open_fence_runs_to_the_end():
    text = "Use this:\n\n```python\nx = 1\n```\nThen:\n~~~\nls -l\n~~~\n"
    assert split_fences(text) == [("markdown", "", "Use this:"), ("code", "python", "x = 1"),
                                  ("markdown", "", "Then:"), ("code", "", "ls -l")]
    assert split_fences("Streaming:\n```js\nlet a = 1;\n") == [("markdown", "", "Streaming:"),
                                                                 ("code", "js", "let a = 1;")]
    assert split_fences("no code") == [("markdown", "", "no code")]


def test_code_is_coloured_by_kind():
    kinds = {"def": "keyword", "'a # b'": "string", "# note": "comment", "42": "number"}
    line = "def f(): return 'a # b', 42  # note"
    found = {line[s:s + n]: kind for s, n, kind in spans(line)}
    assert {k: found.get(k) for k in kinds} == kinds
    assert "f" not in found and "return" in found


def test_each_code_block_copies_its_own_code(qtbot):
    from app.widgets.answer import AnswerWidget

    w = AnswerWidget()
    qtbot.addWidget(w)
    w.add_token("One:\n```python\nprint(1)\n```\nTwo:\n```sh\necho 2\n```\n", "answer")
    w.render()
    first, second = w.body.code_blocks()
    second.copy_button.click()
    assert QGuiApplication.clipboard().text() == "echo 2" and second.copy_button.text() == "Copied"
    first.copy_button.click()
    assert QGuiApplication.clipboard().text() == "print(1)"
    assert first.copy_button.accessibleName() == "Copy python block"


def test_streaming_into_a_code_block_keeps_the_block_and_appends(qtbot):
    from app.widgets.answer import AnswerWidget

    w = AnswerWidget()
    qtbot.addWidget(w)
    w.add_token("Here:\n```python\nfor i in", "answer")
    w.render()
    [block] = w.body.code_blocks()
    w.add_token(" range(3):\n    print(i)\n```\nDone.", "answer")
    w.render()
    assert w.body.code_blocks() == [block] and block.code == "for i in range(3):\n    print(i)"
    assert w.body.toPlainText().endswith("Done.")


def test_sources_are_chips_that_open_their_snippet(qtbot):
    from app.widgets.answer import SourceChips

    chips = SourceChips()
    qtbot.addWidget(chips)
    chips.show()
    chips.set_sources((Source(1, "/docs/manual.pdf", 7, "the pump starts", 0.9),
                       Source(2, "/docs/a-very-long-file-name-that-goes-on-and-on.txt", None, "x", 0.5)))
    assert "[1] manual.pdf · p.7" in chips.text() and "a-very-long-file-name-that…" in chips.text()
    assert not chips.detail.isVisible()
    chips.chips.linkActivated.emit("source:1")
    assert chips.detail.isVisible() and "the pump starts" in chips.detail.text() and "#page=7" in chips.detail.text()
    chips.chips.linkActivated.emit("source:1")
    assert not chips.detail.isVisible()


def test_the_welcome_offers_three_examples_and_shows_the_model_loading(qtbot):
    from app.widgets.welcome import Welcome
    from engine import Progress

    w = Welcome()
    qtbot.addWidget(w)
    asked, folder = [], []
    w.example_chosen.connect(asked.append)
    w.folder_requested.connect(lambda: folder.append(True))
    assert len(w.buttons) == 3 and all(b.accessibleName() for b in w.buttons)
    w.buttons[0].click()
    w.buttons[2].click()
    assert asked == ["What is the capital of Australia?"] and folder == [True]

    job = FakeJob()
    w.follow_load(job)
    job.event.emit(Progress(500, 1000, "Assembling qwen2.5-coder-1.5b-instruct"))
    assert w.progress.value() == 500 and "50%" in w.loading.text()

    class Info:
        name = "qwen2.5-coder-1.5b-instruct"

    class Backend:
        name = "CPU"
    job.done.emit((Info(), Backend()))
    assert not w.progress.isVisibleTo(w) and "is ready" in w.loading.text()


def test_tab_reaches_every_composer_control_and_each_has_a_name(qtbot):
    from app.widgets.composer import Composer

    c = Composer()
    qtbot.addWidget(c)
    c.show()
    c.edit.setFocus()
    qtbot.waitUntil(c.edit.hasFocus)
    seen = []
    for _ in range(6):
        seen.append(QGuiApplication.focusObject())
        qtbot.keyClick(QGuiApplication.focusObject(), Qt.Key.Key_Tab)
    names = {w.accessibleName() for w in seen}
    assert {"Question", "Thinking budget", "Documents to answer from", "Send question"} <= names



def test_the_documents_panel_waits_until_asked_and_remembers(qtbot):
    from app.window import MainWindow
    from engine import config_dir, write_json_atomic

    w = MainWindow(persist=False)
    qtbot.addWidget(w)
    w.show()
    assert not w.documents_dock.isVisible() and w.documents_chosen is None  # space goes to the conversation
    w.sidebar.documents_button.click()
    assert w.documents_dock.isVisible() and w.documents_chosen is True
    w.documents_dock.toggleViewAction().trigger()  # View › Documents (Ctrl+D)
    assert not w.documents_dock.isVisible() and w.documents_chosen is False
    w.show_documents(True)
    w.documents_dock.close()  # its own close button
    assert not w.documents_dock.isVisible() and w.documents_chosen is False
    w.close()

    state = config_dir() / "window.json"
    saved = state.read_bytes() if state.exists() else None
    try:
        write_json_atomic(state, {"documents": True})
        again = MainWindow(persist=False)
        qtbot.addWidget(again)
        again.show()
        assert again.documents_dock.isVisible() and again.documents_chosen is True
        again.close()
    finally:
        state.unlink() if saved is None else state.write_bytes(saved)
