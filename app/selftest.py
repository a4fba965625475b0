"""`ponder selftest --gui`: the real window, off-screen, asks one question through the worker and the engine.

Exits 0 when the streamed answer reached the chat view; packaging and CI run it on the frozen app.
"""
from __future__ import annotations

import json
import os
import sys
import time

import psutil

QUESTION = "What is the capital of France?"
TIMEOUT_S = 300


def run_gui_selftest(as_json: bool = False, gpu_layers: int | None = None) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from app.logs import start_file_logging

    start_file_logging()  # as the app does: the frozen selftest shows the log file works
    from PySide6.QtCore import QTimer

    from app.gui import application
    from app.window import MainWindow
    from engine import Settings

    app = application()
    started = time.perf_counter()
    settings = Settings.load()
    settings.max_tokens, settings.temperature, settings.n_ctx = 16, 0.0, 1024
    if gpu_layers is not None:
        settings.n_gpu_layers = gpu_layers
    window = MainWindow(settings=settings, persist=False)
    window.show()
    app.processEvents()
    # From the process's start (interpreter, imports, the frozen bundle unpacking) to a window taking input.
    result: dict = {"ok": False, "window_s": round(time.time() - psutil.Process().create_time(), 2)}

    def finish(ok: bool, **facts) -> None:
        result.update(ok=ok, **facts)
        window.close()
        app.quit()

    def loaded(info_backend) -> None:
        info, backend = info_backend
        result.update(model=info.name, backend=backend.name,
                      model_ready_s=round(time.time() - psutil.Process().create_time(), 2))
        window.composer.budget.set_budget(0)
        job = window.send(QUESTION)
        job.done.connect(answered)
        job.failed.connect(lambda f: finish(False, error=f.message))

    def answered(answer) -> None:
        shown = window.chat.answers[-1].text if window.chat.answers else ""
        facts = dict(answer=answer.text, shown_in_window=shown, streamed_tokens=window.streamed.answer,
                     decode_tok_s=answer.timings.decode_tok_s)
        # The check's conversation is not the person's: remove it before closing.
        window.bridge.read("Cleaning up", lambda b: b.history.delete(answer.conversation_id),
                           on_done=lambda _r: finish(bool(answer.text) and shown == answer.text, **facts))

    job = window.load_model(settings)
    job.done.connect(loaded)
    job.failed.connect(lambda f: finish(False, error=f.message))
    QTimer.singleShot(TIMEOUT_S * 1000, lambda: finish(False, error=f"no answer within {TIMEOUT_S} s"))
    app.exec()
    result["seconds"] = round(time.perf_counter() - started, 2)
    if as_json:
        print(json.dumps(result))
    elif result["ok"]:
        print(f"gui selftest ok: window after {result['window_s']} s, {result['model']} on {result['backend']} "
              f"ready after {result['model_ready_s']} s, {result['streamed_tokens']} tokens streamed into the "
              f"window, answer {result['answer']!r}")
    else:
        print(f"ponder: gui selftest failed: {result.get('error') or result}", file=sys.stderr)
    return 0 if result["ok"] else 1
