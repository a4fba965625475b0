"""GUI responsiveness: the longest gaps between event-loop ticks of the real window while an answer streams at
full speed and while a collection indexes. The baseline is the same window's event loop left idle."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import replace

import numpy as np

from bench import retrieval_eval
from bench.runner import Result

TICK_MS = 1  # a precise 1 ms timer: each tick is one pass of the event loop that had time to run it
IDLE_S = 2.0
MIN_STREAMED = 400
QUESTIONS = ("List the numbers from 1 to 300, separated by commas.", "Tell me a long story about a lighthouse keeper.",
             "Describe the history of bread in detail.", "Write a long poem about the sea.",
             "Explain how a steam engine works, step by step.", "Tell me a long story about a dragon.")


class TickRecorder:
    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.times: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(lambda: self.times.append(time.perf_counter()))

    def __enter__(self):
        self.times.clear()
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.stop()

    def gaps_ms(self) -> np.ndarray:
        return np.diff(np.array(self.times)) * 1000.0 if len(self.times) > 1 else np.zeros(1)


def _wait(app, job=None, seconds: float | None = None) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    if job is not None:
        job.finished.connect(loop.quit)
    if seconds is not None:
        QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def bench_gui_stall() -> list[Result]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from app.gui import application
    from app.window import MainWindow
    from engine import Settings, ThinkingRequest

    class LongThinkingWindow(MainWindow):
        """The small default model stops after a few dozen tokens; a minimum of thinking ("Wait" injections)
        keeps it streaming at full speed, into the reasoning section, through the same window code."""

        def options(self):
            return replace(super().options(), thinking=ThinkingRequest(MIN_STREAMED + 128, min_think=MIN_STREAMED))

    app = application()
    settings = Settings(n_ctx=2048, max_tokens=384, temperature=0.8)
    window = LongThinkingWindow(settings=settings, persist=False)
    window.show()
    window.new_conversation()
    window.refresh_collections()  # as at start-up: the documents lane opens its index and embedder
    _wait(app, window.load_model(settings))
    _wait(app, window.bridge.read("warm", lambda b: b.library.embedder))
    ticks = TickRecorder()
    with ticks:
        _wait(app, seconds=IDLE_S)
    idle = ticks.gaps_ms()
    answering: list[np.ndarray] = []
    streamed = 0
    made: list[int] = []
    for question in QUESTIONS:  # the small default model often stops early: ask until enough has streamed
        window.new_conversation()
        with ticks:
            job = window.send(question)
            job.done.connect(lambda answer: made.append(answer.conversation_id))
            _wait(app, job)
        answering.append(ticks.gaps_ms())
        streamed += window.streamed.answer + window.streamed.thinking
        if streamed >= MIN_STREAMED:
            break
    with ticks:
        job = window.index(f"gui-bench-{time.time():.0f}", [str(p) for p in retrieval_eval.corpus_paths()])
        _wait(app, job)
    collection = job.label.split(" ", 1)[1]

    def clean(b) -> None:  # leave the person's history and collections as they were
        b.library.remove(collection)
        for cid in made:
            b.history.delete(cid)
    _wait(app, window.bridge.read("clean", clean))
    indexing = ticks.gaps_ms()
    window.close()
    stream = np.concatenate(answering)
    print(f"gui_stall: {streamed} tokens streamed, {len(stream)} ticks while answering, {len(indexing)} while "
          f"indexing, {len(idle)} idle", file=sys.stderr, flush=True)
    p99 = lambda gaps: round(float(np.percentile(gaps, 99)), 2)
    worst = lambda gaps: round(float(gaps.max()), 2)
    both = np.concatenate([stream, indexing])
    return [Result("gui_stall_max", "ms", worst(both), worst(idle), "value<=50"),
            Result("gui_stall_p99", "ms", p99(both), p99(idle), "value<=20"),
            Result("gui_stall_max_answering", "ms", worst(stream), worst(idle), "value<=50"),
            Result("gui_stall_p99_answering", "ms", p99(stream), p99(idle), "value<=20"),
            Result("gui_stall_max_indexing", "ms", worst(indexing), worst(idle), "value<=50"),
            Result("gui_stall_p99_indexing", "ms", p99(indexing), p99(idle), "value<=20")]
