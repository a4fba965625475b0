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


def _dark_palette():
    from PySide6.QtGui import QColor, QPalette

    p = QPalette()
    roles = {QPalette.ColorRole.Window: "#2b2b2b", QPalette.ColorRole.WindowText: "#e6e6e6",
             QPalette.ColorRole.Base: "#1e1e1e", QPalette.ColorRole.AlternateBase: "#333333",
             QPalette.ColorRole.Text: "#e6e6e6", QPalette.ColorRole.Button: "#3a3a3a",
             QPalette.ColorRole.ButtonText: "#e6e6e6", QPalette.ColorRole.Highlight: "#3d6fb4",
             QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.Link: "#8ab4f8",
             QPalette.ColorRole.Mid: "#8a8a8a", QPalette.ColorRole.Dark: "#a0a0a0",
             QPalette.ColorRole.PlaceholderText: "#8a8a8a", QPalette.ColorRole.ToolTipBase: "#3a3a3a",
             QPalette.ColorRole.ToolTipText: "#e6e6e6"}
    for role, colour in roles.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.ButtonText, QPalette.ColorRole.Text, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6f6f6f"))
    return p


def _shoot(out: Path) -> int:
    sys.path.insert(0, str(ROOT))
    home = Path(tempfile.mkdtemp(prefix="ponder-shots-"))
    os.environ["PONDER_HOME"] = str(home)
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui import application
    from app.window import MainWindow
    from engine import Settings

    app = application()
    dark = os.environ.get("PONDER_SCREENSHOTS_DARK") == "1"
    if dark:  # what a dark desktop hands Qt (through its platform theme); Xvfb has none, so set it here
        app.setStyle("Fusion")
        app.setPalette(_dark_palette())
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

    window.composer.budget.set_budget(256)
    job = window.send("A train leaves at 3 pm and travels 120 km at 60 km/h. When does it arrive?")
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
