"""Run the real app under Xvfb and save screenshots of its main states: empty, answering with the reasoning
open, documents with cited sources, and the models dialog.

    python packaging/screenshots.py [OUT_DIR] [--dark]     (default: docs/screenshots)

Needs Xvfb (Debian: `apt-get install xvfb`); re-runs itself under `xvfb-run` when there is no display. Uses a
throw-away Ponder home, so your own conversations never appear in a picture.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = (1280, 800)


def _under_xvfb(out: Path) -> int:
    if not shutil.which("xvfb-run"):
        print("screenshots: xvfb-run not found; install Xvfb (Debian: apt-get install xvfb xauth)", file=sys.stderr)
        return 2
    env = {**os.environ, "PONDER_SCREENSHOTS_CHILD": "1"}
    env.pop("QT_QPA_PLATFORM", None)
    return subprocess.call(["xvfb-run", "-a", "-s", f"-screen 0 {SIZE[0] + 40}x{SIZE[1] + 40}x24",
                            sys.executable, __file__, str(out)], env=env)


def _documents(folder: Path) -> Path:
    """A small real collection: this project's README and design notes, and a PDF that ships with Debian."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "README.md", folder / "README.md")
    pdf = Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf")
    if pdf.exists():
        shutil.copy(pdf, folder / pdf.name)
    return folder


def _shoot(out: Path) -> int:
    sys.path.insert(0, str(ROOT))
    home = Path(tempfile.mkdtemp(prefix="ponder-shots-"))
    os.environ["PONDER_HOME"] = str(home)
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui import application
    from app.widgets.welcome import EXAMPLES
    from app.window import MainWindow
    from engine import Settings

    dark = os.environ.get("PONDER_SCREENSHOTS_DARK") == "1"
    if dark:  # Xvfb has no desktop theme to follow: ask for the dark one (app/style.py)
        os.environ["PONDER_THEME"] = "dark"
    app = application()
    settings = Settings(n_ctx=4096, max_tokens=160, temperature=0.0)
    window = MainWindow(settings=settings)
    window.resize(*SIZE)
    window.move(20, 20)
    window.show()

    def wait_for(job_or_ms) -> None:
        loop = QEventLoop()
        if isinstance(job_or_ms, int):
            QTimer.singleShot(job_or_ms, loop.quit)
        else:
            job_or_ms.finished.connect(loop.quit)
        loop.exec()

    def save(name: str, widget=None) -> None:
        name = f"{name}-dark" if dark else name
        QApplication.processEvents()
        target = widget or window
        pixmap = target.screen().grabWindow(target.winId())
        path = out / f"{name}.png"
        pixmap.save(str(path))
        print(f"saved {path} ({pixmap.width()}x{pixmap.height()})")

    window.refresh_conversations()
    window.refresh_collections()
    wait_for(window.load_model(settings))
    wait_for(300)
    save("empty")

    job = window.ask_example(EXAMPLES[1][1])  # the first start's word problem, asked with Auto
    shot = {"taken": False}

    def mid_answer(event) -> None:  # the picture is taken while the answer streams
        if getattr(event, "kind", "") == "answer" and not shot["taken"] and window.answer_widget:
            shot["taken"] = True
            window.answer_widget.reasoning.toggle.setChecked(True)
            window.answer_widget.render()
            save("answering")
    job.event.connect(mid_answer)
    wait_for(job)

    window.new_conversation()
    wait_for(window.index("Ponder docs", [str(_documents(home / "docs"))]))
    window.composer.set_collection("Ponder docs")
    window.composer.budget.set_budget(0)
    wait_for(window.send("Which command runs the tests?"))
    wait_for(300)
    save("documents")

    window.open_models()
    wait_for(1500)
    dialog = getattr(window, "models_dialog", None)
    if dialog is not None:
        save("models", dialog)
        dialog.reject()
    window.close()
    shutil.rmtree(home, ignore_errors=True)
    return 0


def main() -> int:
    if "--dark" in sys.argv:
        sys.argv.remove("--dark")
        os.environ["PONDER_SCREENSHOTS_DARK"] = "1"
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "screenshots").resolve()
    out.mkdir(parents=True, exist_ok=True)
    if os.environ.get("PONDER_SCREENSHOTS_CHILD") or (os.environ.get("DISPLAY") and sys.platform == "linux"):
        return _shoot(out)
    return _under_xvfb(out)


if __name__ == "__main__":
    sys.exit(main())
