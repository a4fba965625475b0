"""The desktop app, off-screen, through the real bridge, engine and the small built-in Gemma 3 270M."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.widgets.composer import BUDGET_STOPS
from engine import Answer, ConversationStarted, Settings

WAIT_MS = 120_000


def settings(**kw) -> Settings:
    return Settings(**{"model": "gemma-3-270m", "n_ctx": 2048, "max_tokens": 24, "temperature": 0.0, **kw})


@pytest.fixture
def window(qtbot, gemma_model):
    """A main window with Gemma 3 270M loaded; closed (threads joined) after the test."""
    from app.window import MainWindow

    w = MainWindow(settings=settings())
    qtbot.addWidget(w)
    w.show()
    w.new_conversation()  # not the conversation the previous test's window left open
    with qtbot.waitSignal(w.load_model(w.settings).finished, timeout=WAIT_MS):
        pass
    assert w.model_info is not None
    yield w
    w.close()


def ask(qtbot, window, question: str) -> Answer:
    job = window.send(question)
    assert job is not None
    with qtbot.waitSignal(job.done, timeout=WAIT_MS) as blocker:
        pass
    return blocker.args[0]


def test_ask_streams_the_answer_into_the_window(qtbot, window):
    events = []
    job = window.send("What is the capital of France?")
    job.event.connect(events.append)  # connected after submitting, it still sees every event
    assert not window.composer.send_button.isEnabled() and window.composer.stop_button.isEnabled()
    with qtbot.waitSignal(job.done, timeout=WAIT_MS) as blocker:
        pass
    answer = blocker.args[0]
    assert answer.text and answer.stop_reason in ("eos", "stop", "length")
    widget = window.chat.answers[-1]
    assert widget.text == answer.text
    assert widget.body.toPlainText().strip() == answer.text.strip()
    assert window.streamed.answer >= 1  # tokens arrived one by one before the result
    assert events[0] == ConversationStarted(answer.conversation_id) == ConversationStarted(window.conversation_id)
    assert "".join(e.text for e in events[1:] if e.kind == "answer").strip() == answer.text
    assert window.composer.send_button.isEnabled() and not window.composer.stop_button.isEnabled()
    assert "answer" in window.tokens_label.text() and "tok/s" in window.speed_label.text()


def test_escape_stops_the_answer_mid_way(qtbot, window):
    window.settings.max_tokens = 400
    job = window.send("Write a long story about a lighthouse keeper and the sea.")
    qtbot.waitUntil(lambda: window.streamed.answer >= 3, timeout=WAIT_MS)
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Escape)
    with qtbot.waitSignal(job.done, timeout=WAIT_MS) as blocker:
        pass
    answer = blocker.args[0]
    assert answer.stop_reason == "cancelled"
    assert answer.usage.answer_tokens < 400
    assert "stopped" in window.chat.answers[-1].status.text()


def test_the_slider_budget_reaches_the_engine_and_the_reasoning_section(qtbot, window):
    window.composer.budget.slider.setValue(BUDGET_STOPS.index(128))
    assert window.composer.budget.value_label.text() == "128"
    answer = ask(qtbot, window, "If I have 3 apples and buy 4 more, how many do I have?")
    assert answer.budget == 128
    assert answer.thinking is not None and 0 < answer.thinking.used <= 128
    section = window.chat.answers[-1].reasoning
    assert section.isVisible() and not section.text.isVisible()  # collapsed by default
    assert f"{answer.thinking.used} / 128 tokens" in section.toggle.text()
    section.toggle.click()
    assert section.text.isVisible() and section.text.toPlainText().strip() == answer.reasoning


def test_the_budget_is_remembered_per_conversation(qtbot, window):
    window.new_conversation()
    window.composer.budget.set_budget(256)
    answer = ask(qtbot, window, "Name a colour.")
    first = answer.conversation_id
    window.new_conversation()
    window.composer.budget.set_budget(0)
    ask(qtbot, window, "Name a fruit.")
    window.open_conversation(first)
    qtbot.waitUntil(lambda: window.composer.budget.budget() == 256, timeout=10_000)


def test_add_a_folder_see_progress_then_cited_sources(qtbot, window, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "lighthouse.txt").write_text("The Skerry lighthouse keeper is called Agnes Morrow. She has kept the "
                                           "light since 1987 and logs the weather every dawn.\n", encoding="utf-8")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    progress = []
    job = window.index("Notes", [str(folder)])
    job.event.connect(progress.append)
    with qtbot.waitSignal(job.done, timeout=WAIT_MS) as blocker:
        pass
    report = blocker.args[0]
    assert report.indexed == 1 and len(report.skipped) == 1
    assert progress, "indexing reported no progress"
    assert "1 files indexed" in window.documents.phase.text()
    assert window.documents.problems.count() == 1 and "broken.pdf" in window.documents.problems.item(0).text()
    assert window.composer.collection() == "Notes"  # a fresh collection is attached to the question
    answer = ask(qtbot, window, "Who keeps the Skerry lighthouse?")
    assert [Path(s.path).name for s in answer.sources] == ["lighthouse.txt"]
    widget = window.chat.answers[-1]
    assert widget.sources.isVisible() and "lighthouse.txt" in widget.sources.text()
    assert "Agnes Morrow" in answer.context


def test_a_bad_model_file_shows_a_sentence_and_the_app_keeps_working(qtbot, window, tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"<html>404 Not Found</html>")
    with qtbot.waitSignal(window.load_model(settings(model=str(bad))).failed, timeout=WAIT_MS) as blocker:
        pass
    assert window.error_row.isVisible()
    assert "could not be loaded" in window.error_bar.text() and blocker.args[0].message in window.error_bar.text()
    assert window.model_info is not None  # the model that was loaded stays loaded
    assert ask(qtbot, window, "What is the capital of Italy?").text


def test_the_models_dialog_lists_facts_and_rejects_a_bad_import(qtbot, window, tmp_path):
    window.open_models()
    qtbot.waitUntil(lambda: getattr(window, "models_dialog", None) is not None, timeout=10_000)
    dialog = window.models_dialog
    rows = {dialog.table.item(r, 0).text(): r for r in range(dialog.table.rowCount())}
    assert dialog.table.item(rows["gemma-3-270m"], 2).text() == "gemma3"
    assert dialog.table.item(rows["qwen2.5-coder-1.5b-instruct"], 1).text() == "default"
    bad = tmp_path / "empty.gguf"
    bad.write_bytes(b"")
    dialog.import_requested.emit(str(bad))
    qtbot.waitUntil(lambda: "empty" in dialog.message.text() or "0 bytes" in dialog.message.text(), timeout=10_000)
    assert dialog.message.property("role") == "error"  # QLabel[role="error"]: the theme's error colour, measured
    dialog.reject()


def test_a_built_in_chat_model_loads_from_the_models_dialog(qtbot, window, chat_model):
    window.open_models()
    qtbot.waitUntil(lambda: getattr(window, "models_dialog", None) is not None, timeout=10_000)
    dialog = window.models_dialog
    row = next(r for r, e in enumerate(dialog.entries) if e.name == "qwen2.5-coder-0.5b-instruct")
    assert dialog.entries[row].source == "builtin" and dialog.entries[row].description
    dialog.table.selectRow(row)
    assert dialog.use_button.isEnabled() and dialog.chosen_settings().model == "qwen2.5-coder-0.5b-instruct"
    dialog.accept()
    qtbot.waitUntil(lambda: window.model_info is not None and "Qwen" in window.model_info.name, timeout=WAIT_MS)
    assert window.model_info.has_template and ask(qtbot, window, "What is the capital of France?").text


def test_regenerate_replaces_the_last_answer(qtbot, window):
    window.new_conversation()
    first = ask(qtbot, window, "Name a planet.")
    window.regenerate()
    qtbot.waitUntil(lambda: window.answer_job is not None, timeout=10_000)
    with qtbot.waitSignal(window.answer_job.done, timeout=WAIT_MS):
        pass
    messages = window.bridge.history.messages(first.conversation_id)
    assert [m.role for m in messages] == ["user", "assistant"]
    assert len(window.chat.answers) == 1


def test_conversations_survive_a_restart(qtbot, gemma_model):
    from app.window import MainWindow

    w = MainWindow(settings=settings())
    qtbot.addWidget(w)
    w.start()
    qtbot.waitUntil(lambda: w.model_info is not None, timeout=WAIT_MS)
    w.new_conversation()
    answer = ask(qtbot, w, "Remember the word marmalade.")
    w.close()  # saves the window state, joins the threads, frees the model

    again = MainWindow(settings=settings())
    qtbot.addWidget(again)
    again.start()
    qtbot.waitUntil(lambda: again.sidebar.list.count() >= 1 and bool(again.chat.answers), timeout=WAIT_MS)
    assert again.conversation_id == answer.conversation_id
    assert again.chat.answers[-1].text == answer.text
    titles = [again.sidebar.list.item(i).text() for i in range(again.sidebar.list.count())]
    assert "Remember the word marmalade." in titles
    again.close()


def test_switching_conversations_while_an_answer_streams(qtbot, window):
    window.new_conversation()
    first = ask(qtbot, window, "Name a river.")
    window.new_conversation()
    window.settings.max_tokens = 120
    job = window.send("Tell me a long story about a fox.")
    qtbot.waitUntil(lambda: window.streamed.answer >= 2, timeout=WAIT_MS)
    answering_in = window._answering_in
    window.open_conversation(first.conversation_id)  # away: the answer goes on into history only
    qtbot.waitUntil(lambda: bool(window.chat.answers) and window.chat.answers[-1].text == first.text, timeout=10_000)
    window.open_conversation(answering_in)  # and back, while it may still stream
    with qtbot.waitSignal(job.done, timeout=WAIT_MS) as blocker:
        pass
    answer = blocker.args[0]
    qtbot.waitUntil(lambda: bool(window.chat.answers) and window.chat.answers[-1].text == answer.text,
                    timeout=10_000)
    assert window.conversation_id == answer.conversation_id == answering_in


def test_download_from_the_models_dialog_with_progress(qtbot, window, tiny_model, monkeypatch):
    from bench.hub import hub_with

    window.open_models()
    qtbot.waitUntil(lambda: getattr(window, "models_dialog", None) is not None, timeout=10_000)
    dialog = window.models_dialog
    assert dialog.catalog_table.rowCount() == len(dialog.catalog) >= 10
    with hub_with(tiny_model, "org/gui-GGUF/gui-tiny.gguf") as hub:
        monkeypatch.setenv("PONDER_HUB", hub.url)
        seen = []
        job = window.pull("org/gui-GGUF/gui-tiny.gguf", dialog)
        job.event.connect(seen.append)
        assert dialog.download_progress.isVisible()
        with qtbot.waitSignal(job.done, timeout=60_000):
            pass
    assert seen and "Downloaded gui-tiny.gguf" in dialog.message.text()
    assert not dialog.download_progress.isVisible()
    qtbot.waitUntil(lambda: any(e.name == "gui-tiny" for e in dialog.entries), timeout=10_000)
    dialog.reject()


def test_answer_through_a_server_then_back_to_the_local_model(qtbot, window, gemma_server, memory_keyring):
    from engine.remote import RemoteEndpoint, load_endpoints

    window.new_conversation()
    with qtbot.waitSignal(window.use_remote(RemoteEndpoint(gemma_server), "sk-test").done, timeout=WAIT_MS):
        pass
    assert "remote" in window.model_label.text() and window.settings.remote == gemma_server
    assert any(e.url == gemma_server for e in load_endpoints())
    assert memory_keyring.get_password("Ponder", f"api-key:{gemma_server}") == "sk-test"
    answer = ask(qtbot, window, "What is the capital of France?")
    assert answer.backend == f"remote {gemma_server}" and answer.text
    assert window.chat.answers[-1].text == answer.text
    with qtbot.waitSignal(window.load_model(window.settings).done, timeout=WAIT_MS):
        pass
    assert window.settings.remote == "" and ask(qtbot, window, "Name a colour.").backend == "CPU"


def test_preferences_apply_to_the_next_question_without_reloading(qtbot, window):
    window.open_preferences()
    dialog = window.preferences_dialog
    dialog.max_tokens.setValue(16)
    dialog.temperature.setValue(0.0)
    dialog.accept()
    assert window.settings.max_tokens == 16 and window.settings.temperature == 0.0
    loaded = window.bridge.engine.session
    window.new_conversation()
    answer = ask(qtbot, window, "Write a long story about a lighthouse.")
    assert answer.usage.answer_tokens <= 16 and window.bridge.engine.session is loaded


def test_edit_and_resend_replaces_the_last_question_only_when_sent(qtbot, window):
    window.new_conversation()
    first = ask(qtbot, window, "Name a mountain.")
    cid = first.conversation_id
    window.edit_last()
    qtbot.waitUntil(lambda: window.composer.edit.toPlainText() == "Name a mountain.", timeout=10_000)
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Escape)  # gives up: nothing was removed
    assert window.composer.edit.toPlainText() == ""
    assert [m.role for m in window.bridge.history.messages(cid)] == ["user", "assistant"]
    window.edit_last()
    qtbot.waitUntil(lambda: window.composer.edit.toPlainText() == "Name a mountain.", timeout=10_000)
    window.composer.edit.setPlainText("Name a lake.")
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.answer_job is not None, timeout=10_000)
    with qtbot.waitSignal(window.answer_job.done, timeout=WAIT_MS):
        pass
    messages = window.bridge.history.messages(cid)
    assert [(m.role, m.content) for m in messages][0] == ("user", "Name a lake.") and len(messages) == 2
    assert len(window.chat.answers) == 1


def test_think_more_asks_one_stop_up_and_shows_both_answers_side_by_side(qtbot, window):
    from PySide6.QtGui import QAction, QKeySequence

    from app.widgets.answer import ComparisonRow

    window.new_conversation()
    window.composer.budget.set_budget(0)
    first = ask(qtbot, window, "Name a planet.")
    cid, widget = first.conversation_id, window.chat.answers[-1]
    assert widget.think_more_button.isVisible() and widget.think_more_button.isEnabled()
    qtbot.mouseClick(widget.think_more_button, Qt.MouseButton.LeftButton)
    job = window.answer_job
    assert job is not None and job.label == "Thinking more"
    assert not widget.think_more_button.isEnabled() and window.think_more(widget) is None  # not while streaming
    with qtbot.waitSignal(job.done, timeout=WAIT_MS) as blocker:
        pass
    newer = blocker.args[0]
    assert newer.thinking.budget == 128 and not newer.thinking.auto  # Off -> 128 reached the engine
    assert window.composer.budget.budget() == 0  # the slider stays where the person left it
    row = widget.parentWidget()
    assert isinstance(row, ComparisonRow) and row.answers == (widget, window.chat.answers[-1])
    for w, a, label in ((widget, first, "Off"), (row.answers[1], newer, "128")):
        u = a.usage
        assert f"Thinking <b>{label}</b>" in w.heading.text() and w.heading.isVisible()
        assert f"{u.thinking_tokens:,} thinking + {u.answer_tokens:,} answer tokens" in w.heading.text()
    assert row.answers[1].text == newer.text
    messages = window.bridge.history.messages(cid)  # the turn was replaced: the conversation goes on from it
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].content == newer.text and messages[1].meta["thinking"]["budget"] == 128
    assert not widget.think_more_button.isEnabled() and row.answers[1].think_more_button.isEnabled()

    keys = [a.shortcut() for a in window.findChildren(QAction) if not a.shortcut().isEmpty()]
    assert len(keys) == len(set(k.toString() for k in keys))  # Ctrl+T clashes with no other shortcut
    action = next(a for a in window.findChildren(QAction) if a.text() == "Think more on the last answer")
    assert action.shortcut() == QKeySequence("Ctrl+T")
    action.trigger()  # one more stop, on the newer answer: the first one leaves the comparison
    with qtbot.waitSignal(window.answer_job.done, timeout=WAIT_MS) as blocker:
        pass
    assert blocker.args[0].thinking.budget == 256
    assert window.chat.answers[-2].text == newer.text and len(window.chat.answers) == 2

    window.open_conversation(cid)  # reopened: one question, the newest answer
    qtbot.waitUntil(lambda: len(window.chat.answers) == 1 and window.chat.answers[0].text == blocker.args[0].text,
                    timeout=10_000)
    assert len(window.bridge.history.messages(cid)) == 2


def test_think_more_after_auto_and_stopping_it_keeps_the_first_answer(qtbot, window):
    from app.widgets.composer import next_budget

    window.new_conversation()
    window.composer.budget.set_budget(None)
    first = ask(qtbot, window, "If I have 3 apples and buy 4 more, how many do I have?")
    assert first.thinking.auto
    widget = window.chat.answers[-1]
    assert widget.reasoning.isVisible() and widget.reasoning.words.text()  # Auto says what it did, in words
    window.settings.max_tokens = 400
    expected = next_budget(None, first.thinking.used)
    job = window.think_more(widget)
    qtbot.waitUntil(lambda: window.streamed.thinking + window.streamed.answer >= 3, timeout=WAIT_MS)
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Escape)
    with qtbot.waitSignal(job.done, timeout=WAIT_MS) as blocker:
        pass
    stopped = blocker.args[0]
    assert stopped.stop_reason == "cancelled" and stopped.thinking.budget == expected
    messages = window.bridge.history.messages(first.conversation_id)
    assert [(m.role, m.content) for m in messages][1] == ("assistant", first.text) and len(messages) == 2
    assert window.chat.kept is widget and widget.think_more_button.isEnabled()
    assert "stopped" in window.chat.answers[-1].status.text()
