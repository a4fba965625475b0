"""The window's parts on their own: keys, the slider's stops, time left, the conversation filter, the bridge."""
from __future__ import annotations

import gc
import threading
import weakref

from PySide6.QtCore import Qt

from app import style
from app.bridge import Bridge, failure_of
from app.widgets.composer import BUDGET_STOPS, Composer, budget_from_setting, budget_label, budget_to_setting
from app.widgets.documents import time_left
from app.widgets.sidebar import Sidebar
from engine import Cancelled, CollectionSummary, Conversation, ModelError, Source


def test_enter_sends_shift_enter_adds_a_line_escape_stops(qtbot):
    c = Composer()
    qtbot.addWidget(c)
    sent, stopped = [], []
    c.send.connect(sent.append)
    c.stop.connect(lambda: stopped.append(True))
    qtbot.keyClicks(c.edit, "first line")
    qtbot.keyClick(c.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(c.edit, "second")
    assert sent == []
    qtbot.keyClick(c.edit, Qt.Key.Key_Return)
    assert sent == ["first line\nsecond"]
    qtbot.keyClick(c.edit, Qt.Key.Key_Escape)
    assert stopped == [True]
    c.set_answering(True)
    qtbot.keyClick(c.edit, Qt.Key.Key_Return)
    assert len(sent) == 1  # no second question while one is being answered


def test_blank_questions_are_not_sent(qtbot):
    c = Composer()
    qtbot.addWidget(c)
    sent = []
    c.send.connect(sent.append)
    qtbot.keyClicks(c.edit, "   ")
    qtbot.keyClick(c.edit, Qt.Key.Key_Return)
    assert sent == []


def test_slider_stops_and_labels():
    assert [budget_label(b) for b in BUDGET_STOPS] == ["Off", "128", "256", "512", "1k", "2k", "4k", "8k", "Auto"]
    for b in BUDGET_STOPS:
        assert budget_from_setting(budget_to_setting(b)) == b
    assert budget_from_setting(77) == 0 and budget_from_setting(None) == 0  # unknown values fall back to Off


def test_slider_emits_the_budget(qtbot):
    c = Composer()
    qtbot.addWidget(c)
    seen = []
    assert c.budget.budget() is None and c.budget.value_label.text() == "Auto"  # a new window starts on Auto
    c.budget.changed.connect(seen.append)
    c.budget.slider.setValue(0)
    assert seen[-1] == 0 and c.budget.value_label.text() == "Off"
    c.budget.slider.setValue(len(BUDGET_STOPS) - 1)
    assert seen[-1] is None and c.budget.budget() is None and c.budget.value_label.text() == "Auto"
    qtbot.keyClick(c.budget.slider, Qt.Key.Key_Left)
    assert c.budget.budget() == 8192


def test_the_collection_choice_keeps_a_name_not_listed_yet(qtbot):
    c = Composer()
    qtbot.addWidget(c)
    c.set_collection("Fresh")
    assert c.collection() == "Fresh"
    c.set_collections(["A", "Fresh"])
    assert c.collection() == "Fresh"
    c.set_collection("")
    assert c.collection() == ""


def test_time_left():
    assert time_left(100.0, 0, 10, now=105) == ""
    assert time_left(100.0, 5, 10, now=100.5) == ""  # under a second: no rate worth quoting yet
    assert time_left(100.0, 5, 10, now=110) == "about 10 s left"
    assert time_left(100.0, 1, 100, now=110) == "about 16 min left"


def test_sidebar_filters_and_selects(qtbot):
    s = Sidebar()
    qtbot.addWidget(s)
    s.set_conversations([Conversation(1, "Lighthouses", 0, 0, {}), Conversation(2, "Bread recipes", 0, 0, {})], 2)
    assert s.list.currentItem().text() == "Bread recipes"
    chosen = []
    s.selected.connect(chosen.append)
    s.list.setCurrentRow(0)
    assert chosen == [1]
    s.search.setText("bread")
    assert [s.list.item(i).isHidden() for i in range(2)] == [True, False]


def test_failures_become_sentences():
    assert failure_of(ModelError("The file is empty.")).message == "The file is empty."
    assert failure_of(ModelError("x")).kind == "error" and failure_of(Cancelled("Paused.")).kind == "cancelled"
    try:
        {}["x"]
    except KeyError as e:
        f = failure_of(e)
    assert "KeyError" in f.message and "Traceback" in f.detail


def test_jobs_run_off_the_gui_thread_in_order_and_report_failures(qtbot, ponder_home):
    bridge = Bridge()
    try:
        threads, results, failures = [], [], []
        for i in range(3):
            bridge.read(f"job {i}", lambda b, i=i: threads.append(threading.get_ident()) or i,
                        on_done=results.append)
        job = bridge.read("broken", lambda b: 1 / 0, on_failed=failures.append)
        with qtbot.waitSignal(job.finished, timeout=10_000):
            pass
        assert results == [0, 1, 2]
        assert threading.get_ident() not in threads
        assert "ZeroDivisionError" in failures[0].message
        assert not bridge.is_busy("documents")
    finally:
        bridge.shutdown()


def test_a_cancelled_job_that_had_not_started_never_runs(qtbot, ponder_home):
    bridge = Bridge()
    try:
        gate = threading.Event()
        ran = []
        bridge.read("blocker", lambda b: gate.wait(10))
        queued = bridge.read("queued", lambda b: ran.append(True))
        queued.cancel()
        gate.set()
        with qtbot.waitSignal(queued.failed, timeout=10_000) as blocker:
            pass
        assert ran == [] and blocker.args[0].message == "Stopped."
    finally:
        bridge.shutdown()


def test_a_finished_job_is_freed(qtbot, ponder_home):
    """One small object per answer must not pile up for the life of the window."""
    bridge = Bridge()
    try:
        job = bridge.read("short", lambda b: 1, on_done=lambda _r: None)
        with qtbot.waitSignal(job.finished, timeout=10_000):
            pass
        freed = weakref.ref(job)
        del job
        qtbot.waitUntil(lambda: gc.collect() >= 0 and freed() is None, timeout=5_000)
    finally:
        bridge.shutdown()


def test_shutdown_stops_a_running_answer(qtbot, gemma_model):
    from engine import AskOptions, ConversationStarted, LoadSettings

    bridge = Bridge()
    loading = bridge.run_on_engine("load", lambda e: e.load(gemma_model, LoadSettings(n_ctx=1024)))
    with qtbot.waitSignal(loading.finished, timeout=60_000):
        pass
    events = []
    bridge.ask("Tell me a very long story.", None, AskOptions(max_tokens=2000), on_event=events.append)
    qtbot.waitUntil(lambda: len(events) >= 3, timeout=60_000)
    bridge.shutdown()  # returns once the answer has seen its cancel flag
    assert bridge.engine.session is None
    started = events[0]
    assert isinstance(started, ConversationStarted)  # the engine announced the conversation it created
    assert bridge.history.messages(started.conversation_id)[-1].state == "cancelled"


def test_answers_render_markdown_tables_lists_and_code(qtbot):
    from PySide6.QtGui import QTextTable

    from app.widgets.chat_view import AnswerWidget

    w = AnswerWidget()
    qtbot.addWidget(w)
    for piece in ["Steps:\n\n1. one\n2. two\n\n", "| a | b |\n|---|---|\n| 1 | 2 |\n\n", "```python\nprint(1)\n```\n"]:
        w.add_token(piece, "answer")
    w.render()
    doc = w.body.markdown_views()[0].document()
    frames = [f for f in doc.rootFrame().childFrames() if isinstance(f, QTextTable)]
    assert len(frames) == 1 and frames[0].rows() == 2 and frames[0].columns() == 2
    text = w.body.toPlainText()
    assert "print(1)" in text and "one" in text and "```" not in text
    [code] = w.body.code_blocks()
    assert code.code == "print(1)" and code.language.text() == "python"


def test_latex_is_read_in_prose_but_code_keeps_its_backslashes(qtbot):
    from app.widgets.answer import AnswerWidget

    w = AnswerWidget()
    qtbot.addWidget(w)
    w.add_token("It is \\(\\boxed{5 \\, \\text{pm}}\\).\n\n```python\nre.compile(r\"\\(\\,\")\n```\n", "answer")
    w.render()
    assert "It is 5 pm." in w.body.toPlainText()
    [code] = w.body.code_blocks()
    assert code.code == 're.compile(r"\\(\\,")'


def test_pdf_sources_link_to_their_page():
    from app.widgets.answer import source_html

    html = source_html((Source(1, "/docs/manual.pdf", 7, "the pump", 0.9),
                        Source(2, "/docs/notes.txt", None, "x < y", 0.5)))
    assert "file:///docs/manual.pdf#page=7" in html and "[1] manual.pdf, page 7" in html
    assert "file:///docs/notes.txt\"" in html and "x &lt; y" in html
    assert f"color:{style.current().muted}" in html  # the snippet in the theme's muted colour, not the border's


def test_dropping_files_on_the_documents_panel_indexes_them(qtbot, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    from app.widgets.documents import DocumentsPanel

    panel = DocumentsPanel()
    qtbot.addWidget(panel)
    panel.set_collections([CollectionSummary("Papers", created=0.0, files=1, skipped=0, chunks=3, embedded=3)])
    panel.collections.setCurrentRow(0)
    asked = []
    panel.index_requested.connect(lambda name, paths: asked.append((name, paths)))
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(tmp_path / "a.pdf")), QUrl("https://example.org/not-local")])
    event = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, data, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    panel.dropEvent(event)
    assert asked == [("Papers", [str(tmp_path / "a.pdf")])]


def test_the_reasoning_says_in_words_what_happened(qtbot):
    from app.widgets.answer import AnswerWidget
    from engine import Answer, ThinkingReport, Timings, Usage

    words = "Auto chose 256 tokens: the question has several numbers. Stopped early at 143: the answer had settled."
    report = ThinkingReport("scaffold", 256, 143, "early", auto=True, thinking_s=2.5, answer_s=0.5, explanation=words)
    w = AnswerWidget(None)
    qtbot.addWidget(w)
    w.show()
    w.finish(Answer("4", "eos", Usage(thinking_tokens=143, answer_tokens=3), Timings(), reasoning="3 + 1 is 4",
                    thinking=report))
    section = w.reasoning
    assert section.words.isVisible() and section.words.text() == words  # without opening the section
    assert not section.text.isVisible() and section.toggle.text().startswith("Reasoning · 143 / 256 tokens")
    assert "143 thinking + 3 answer tokens · 3.0 s" in w.heading.text()


def test_opened_reasoning_shows_every_wrapped_line_without_scrolling(qtbot):
    """Its height was counted while it was closed (a line a paragraph), so wrapped lines scrolled in a small box."""
    from app.widgets.chat_view import ChatView

    view = ChatView()
    qtbot.addWidget(view)
    view.resize(560, 420)
    view.show()
    view.add_question("A train leaves at 3 pm and travels 120 km at 60 km/h. When does it arrive?")
    w = view.add_answer(None)
    for word in ("The train leaves at 3 pm and travels 120 km at 60 km/h.\n\nDistance 120 km over speed 60 km/h "
                 "is 2 hours, so it arrives at 5 pm, two hours after 3 pm, on a line long enough to wrap.").split(" "):
        w.add_token(word + " ", "thinking")
    w.add_token("It arrives at 5 pm.", "answer")
    w.render()
    text = w.reasoning.text
    w.reasoning.toggle.setChecked(True)
    lines = lambda: text.document().documentLayout().documentSize().height()
    qtbot.waitUntil(lambda: lines() >= 4)  # the second paragraph wraps
    qtbot.waitUntil(lambda: text.height() >= lines() * text.fontMetrics().lineSpacing())
    assert not text.verticalScrollBar().isVisible()


def test_older_reports_without_words_fall_back_to_the_figures(qtbot):
    from app.widgets.answer import AnswerWidget
    from engine import StoredMessage

    old = {"format": "scaffold", "budget": 128, "used": 40, "closed_by": "model", "thinking_s": 1.0}  # no explanation
    w = AnswerWidget()
    qtbot.addWidget(w)
    w.show()
    w.show_stored(StoredMessage(1, 1, "assistant", "Mars.", "red", "complete", 0.0, {"thinking": old}))
    assert w.reasoning.toggle.text() == "Reasoning · 40 / 128 tokens · closed by the model · 1.0 s"
    assert not w.reasoning.words.isVisible()
    assert w.budget == 128 and w.next_budget() == 256


def test_auto_answering_directly_still_shows_its_one_quiet_line(qtbot):
    from app.widgets.answer import AnswerWidget
    from engine import StoredMessage

    direct = {"format": "scaffold", "budget": 0, "used": 0, "closed_by": "off", "auto": True,
              "explanation": "Auto answered directly: a simple question the model was sure of."}
    old_direct = {**direct, "explanation": "", "auto_reason": "form 0.10, first-token entropy 0.40 nats -> score 0.10"}
    for meta, line in ((direct, direct["explanation"]),
                       (old_direct, "Auto answered directly, without thinking (form 0.10, first-token entropy "
                                    "0.40 nats -> score 0.10).")):
        w = AnswerWidget()
        qtbot.addWidget(w)
        w.show()
        w.show_stored(StoredMessage(1, 1, "assistant", "Paris.", "", "complete", 0.0, {"thinking": meta}))
        assert w.reasoning.isVisible() and w.reasoning.words.text() == line
        assert not w.reasoning.toggle.isVisible() and not w.reasoning.text.isVisible()  # nothing to open
        assert w.budget is None and w.next_budget() == 128  # Auto used nothing: the first stop


def test_think_more_goes_one_stop_up_the_slider():
    from app.widgets.composer import next_budget

    assert [next_budget(b) for b in BUDGET_STOPS[:-1]] == [128, 256, 512, 1024, 2048, 4096, 8192, None]
    assert next_budget(None, used=143) == 256 and next_budget(None, used=256) == 512  # above what Auto used
    assert next_budget(None, used=0) == 128


def test_think_more_is_offered_on_the_last_finished_answer_only(qtbot):
    from app.widgets.chat_view import ChatView
    from engine import StoredMessage

    view = ChatView()
    qtbot.addWidget(view)
    asked = []
    view.think_more.connect(asked.append)

    def stored(budget: int) -> StoredMessage:
        report = {"format": "scaffold", "budget": budget, "used": 10, "closed_by": "model"}
        return StoredMessage(2, 1, "assistant", "An answer.", "", "complete", 0.0, {"thinking": report})
    view.show_messages([StoredMessage(1, 1, "user", "Q?", "", "complete", 0.0, {}), stored(256),
                        StoredMessage(3, 1, "user", "Q2?", "", "complete", 0.0, {}), stored(8192)])
    earlier, last = view.answers
    assert not earlier.think_more_button.isEnabled() and not last.think_more_button.isEnabled()
    assert "largest budget (8k)" in last.think_more_button.toolTip()
    assert last.think_more_button.accessibleName() == "Think more"
    view.remove_last_turn()
    assert view.kept is earlier and earlier.think_more_button.isEnabled()
    assert "512 thinking tokens" in earlier.think_more_button.toolTip()
    view.set_answering(True)
    assert not earlier.think_more_button.isEnabled()
    view.set_answering(False)
    earlier.think_more_button.click()
    assert asked == [earlier]


def test_the_footer_counts_accepted_drafts_only_when_there_were_drafts(qtbot):
    from app.widgets.answer import AnswerWidget
    from engine import Answer, Timings, Usage

    w = AnswerWidget(None)
    qtbot.addWidget(w)
    w.finish(Answer("Quoted.", "eos", Usage(answer_tokens=40, drafted_tokens=24, accepted_tokens=20),
                    Timings(decode_tok_s=12.0), model="M"))
    assert "M · 40 tokens (20 of 24 drafted accepted) · 12 tok/s" in w.status.text()
    w.finish(Answer("Prose.", "eos", Usage(answer_tokens=40), Timings(decode_tok_s=12.0), model="M"))
    assert "drafted" not in w.status.text()


def test_preferences_switch_speculative_decoding(qtbot):
    from app.widgets.preferences import PreferencesDialog
    from engine import Settings

    dialog = PreferencesDialog(Settings())
    qtbot.addWidget(dialog)
    assert not dialog.speculate.isChecked()  # off until the bench shows the gain
    dialog.speculate.setChecked(True)
    assert dialog.chosen().speculate is True


def test_reading_the_prompt_shows_progress_and_time_left_then_gives_way_to_the_answer(qtbot):
    from app.progress import progress_text
    from app.widgets.answer import AnswerWidget
    from engine import Progress

    assert progress_text(Progress(0, 900, "Reading 3 passages", 12.0)) == "Reading 3 passages… 0% · about 12 s left"
    assert progress_text(Progress(360, 900, "Reading 3 passages", None)) == "Reading 3 passages… 40%"
    assert progress_text(Progress(360, 900, "Reading 3 passages", 0.4)) == "Reading 3 passages… 40% · almost done"
    w = AnswerWidget()
    qtbot.addWidget(w)
    w.show_reading(Progress(360, 900, "Reading 3 passages", 6.2))
    assert w.status.text() == "Reading 3 passages… 40% · about 6 s left"
    w.add_token("Paris", "answer")
    assert w.status.text() == ""


def test_answer_links_open_only_when_safe(qtbot, tmp_path, monkeypatch):
    from PySide6.QtGui import QDesktopServices

    from app.widgets import markdown

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toString()) or True)
    view = markdown.MarkdownView()
    qtbot.addWidget(view)
    assert not view.openExternalLinks() and not view.openLinks()
    (tmp_path / "a.md").write_text("x")
    monkeypatch.setattr(markdown, "LINK_ROOTS", [str(tmp_path)])
    for url in ("file:///etc/passwd", "smb://host/x", "https://example.org", (tmp_path / "a.md").as_uri()):
        view.anchorClicked.emit(markdown.QUrl(url))
    assert opened == ["https://example.org", (tmp_path / "a.md").as_uri()]


def test_a_pause_in_typing_a_question_with_documents_asks_for_a_read_ahead_once(qtbot):
    c = Composer()
    qtbot.addWidget(c)
    c.draft_timer.setInterval(50)
    drafts = []
    c.draft_changed.connect(drafts.append)
    qtbot.keyClicks(c.edit, "How many")
    qtbot.wait(200)
    assert drafts == []  # no collection chosen: nothing to read ahead
    with qtbot.waitSignal(c.draft_changed, timeout=2_000):
        c.set_collection("Notes")  # choosing one counts as a change
    assert drafts == ["How many"]
    with qtbot.waitSignal(c.draft_changed, timeout=2_000):
        qtbot.keyClicks(c.edit, " crates")  # seven keystrokes, one pause
    assert drafts == ["How many", "How many crates"]
    c.set_answering(True)
    qtbot.keyClicks(c.edit, " now")
    qtbot.wait(200)
    assert len(drafts) == 2  # nothing is read ahead while an answer runs


def test_any_engine_job_stops_a_read_ahead_first_and_the_composer_says_so_quietly(qtbot, ponder_home):
    from types import SimpleNamespace

    from engine import AskOptions, ReadAhead

    def read_slowly(draft, *, conversation_id, options, is_cancelled, on_read):
        """A read-ahead as long as a test needs: 10 ms chunks, the cancel flag checked before each."""
        for i in range(1000):
            if is_cancelled():
                return ReadAhead(evaluated=i, stopped=True)
            on_read(i, 1000)
            threading.Event().wait(0.01)
        return ReadAhead(evaluated=1000)

    bridge = Bridge()
    composer = Composer()
    qtbot.addWidget(composer)
    try:
        bridge.answerer = SimpleNamespace(read_ahead=read_slowly)
        first = bridge.read_ahead("How many", None, AskOptions())
        composer.show_reading(first)
        qtbot.waitUntil(lambda: composer.hint.text().endswith("%"), timeout=10_000)
        assert not composer.hint.isHidden() and composer.hint.text().startswith("Reading sources…")
        second = bridge.read_ahead("How many crates", None, AskOptions())  # a newer draft replaces it
        composer.show_reading(second)
        order, stopped = [], []
        first.done.connect(lambda r: order.append("first") or stopped.append(r))
        second.done.connect(lambda r: order.append("second"))
        second.failed.connect(lambda f: order.append(f"second {f.kind}"))
        asked = bridge.run_on_engine("Answering", lambda engine: "asked", on_done=order.append)
        assert bridge.read_ahead("How many crates do", None, AskOptions()) is None  # never behind real work
        with qtbot.waitSignal(asked.finished, timeout=10_000):
            pass
        assert order == ["first", "second cancelled", "asked"]  # the queued one never started
        assert stopped[0].stopped and stopped[0].evaluated < 1000
        assert composer.hint.isHidden()
    finally:
        bridge.shutdown()


def test_the_models_dialog_says_how_each_model_thinks():
    from app.widgets.models_dialog import thinking_cell

    assert thinking_cell("qwen3", True) == "native (qwen3)"
    assert thinking_cell("none", True) == "prompted"  # Qwen2.5: asked to reason before "Final answer:"
    assert thinking_cell("none", False) == "prompted (base model)"  # Gemma 3 270M base
