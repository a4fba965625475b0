"""Run the real app under Xvfb with the real default model and save the README's pictures.

    python packaging/screenshots.py [OUT_DIR] [--only SCENE,...] [--model NAME]
                                    (default: docs/screenshots, every scene, the default model)

Scenes, each in a process of its own (the theme and the scale are chosen before Qt starts):

- `first-start`: a fresh Ponder home, as on a new computer: the default model being prepared, with progress
  (first-start-1-loading.png); ready, with the three examples (first-start-2-welcome.png); the word problem
  clicked and answered with Auto (first-start-3-answered.png).
- `answer`, `answer-dark`, `answer-2x`, `answer-small`, `answer-hd`: a word problem answered with Auto thinking,
  the reasoning open; light and dark at 1280x800, light at 200% scale, light in an 800x600 and a 1920x1080 window.
- `documents`, `models`: an answer from a small collection with its sources; the Models dialog.

A scene fails (exit status 1, its picture kept for a look) when the model's answer is not the right one: these
pictures show what the model really says. Needs Xvfb (Debian: `apt-get install xvfb xauth`); re-runs itself
under `xvfb-run` when there is no display. Every scene uses a throw-away Ponder home (sharing the prepared models),
so your own conversations never appear in a picture.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCREEN = (2640, 1680)  # room for a 1280x800 window at 200%


@dataclass(frozen=True)
class Scene:
    name: str
    theme: str = "light"
    scale: int = 1
    size: tuple[int, int] = (1280, 800)


SCENES = (Scene("first-start"), Scene("answer"), Scene("answer-dark", theme="dark"), Scene("answer-2x", scale=2),
          Scene("answer-small", size=(800, 600)), Scene("answer-hd", size=(1920, 1080)), Scene("documents"),
          Scene("models"))
# The README's word problem (once answered "3" in its picture), and what a right answer says: 120 km at 60 km/h
# takes 2 hours.
WORD_PROBLEM = "A train leaves at 3 pm and travels 120 km at 60 km/h. When does it arrive?"
ARRIVES = re.compile(r"\b5(:00)?\s*(pm|p\.m\.)|\b17:00", re.IGNORECASE)
EXAMPLE_RIGHT = re.compile(r"\b4,?200\b")  # the welcome's word problem: 2 dogs x 300 g x 7 days
DOCUMENTS_QUESTION = "Which command runs the tests?"


def _under_xvfb(argv: list[str]) -> int:
    if not shutil.which("xvfb-run"):
        print("screenshots: xvfb-run not found; install Xvfb (Debian: apt-get install xvfb xauth)", file=sys.stderr)
        return 2
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb"}
    return subprocess.call(["xvfb-run", "-a", "-s", f"-screen 0 {SCREEN[0]}x{SCREEN[1]}x24",
                            sys.executable, __file__, *argv], env=env)


def _run_scenes(out: Path, names: list[str]) -> int:
    """Each scene in a child process, one after another, all sharing one models folder."""
    work = Path(tempfile.mkdtemp(prefix="ponder-shots-"))
    (work / "models").mkdir()
    failed = []
    try:
        for scene in SCENES:
            if scene.name not in names:
                continue
            env = {**os.environ, "PONDER_SCREENSHOTS_SCENE": json.dumps(asdict(scene)),
                   "PONDER_HOME": str(work / scene.name), "PONDER_THEME": scene.theme,
                   "QT_SCALE_FACTOR": str(scene.scale)}
            (work / scene.name / "data").mkdir(parents=True)
            (work / scene.name / "data" / "models").symlink_to(work / "models")
            print(f"scene {scene.name}", flush=True)
            if subprocess.call([sys.executable, __file__, str(out)], env=env) != 0:
                failed.append(scene.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        print(f"screenshots: {', '.join(failed)} failed (see above)", file=sys.stderr)
    return 1 if failed else 0


class Camera:
    """The window under test, waits on its jobs, and saves what is on the screen."""

    def __init__(self, scene: Scene, out: Path) -> None:
        sys.path.insert(0, str(ROOT))
        from app.gui import application
        from app.window import MainWindow
        from engine import Settings

        self.scene, self.out, self.app = scene, out, application()
        self.settings = Settings.load()  # a fresh home's defaults: the default model, Auto's own budget
        self.settings.temperature = 0.0  # the same answer on every run
        self.settings.model = os.environ.get("PONDER_SCREENSHOTS_MODEL", "")
        self.window = MainWindow(settings=self.settings)
        self.window.resize(*scene.size)
        self.window.move(20, 20)
        self.window.show()
        self.ok = True

    def wait(self, job=None, ms: int | None = None, until=None) -> None:
        from PySide6.QtCore import QEventLoop, QTimer

        loop = QEventLoop()
        if job is not None:
            job.finished.connect(loop.quit)
        if ms is not None:
            QTimer.singleShot(ms, loop.quit)
        if until is not None:
            timer = QTimer()
            timer.timeout.connect(lambda: until() and loop.quit())
            timer.start(100)
        loop.exec()

    def save(self, name: str, widget=None) -> None:
        self.wait(ms=400)  # layouts settle, the last tokens render
        target = widget or self.window
        pixmap = target.screen().grabWindow(target.winId())
        path = self.out / f"{name}.png"
        pixmap.save(str(path))
        print(f"saved {path} ({pixmap.width()}x{pixmap.height()})", flush=True)

    def answer(self, job, right: re.Pattern):
        """Wait for `job`'s answer; say what it was and whether it is right."""
        answers = []
        job.done.connect(answers.append)
        job.failed.connect(lambda f: print(f"  failed: {f.message}", file=sys.stderr))
        self.wait(job)
        if not answers:
            self.ok = False
            return None
        a = answers[0]
        t = a.thinking
        print(f"  thinking {a.usage.thinking_tokens} tokens (Auto: {t.auto_reason if t else '-'}), "
              f"answer {a.usage.answer_tokens} tokens: {a.text!r}", flush=True)
        from app.widgets.markdown import plain_math

        if not right.search(plain_math(a.text)):  # what the picture shows: "\\boxed{5 \\, \\text{pm}}" reads "5 pm"
            print(f"  the answer is wrong (wanted /{right.pattern}/)", file=sys.stderr)
            self.ok = False
        return a

    def open_reasoning(self) -> None:
        widget = self.window.chat.answers[-1]
        if widget.reasoning.toggle.isVisible():
            widget.reasoning.toggle.setChecked(True)


def first_start(cam: Camera) -> None:
    """As on a new computer: the model prepared with progress, the examples, one clicked and answered."""
    w = cam.window
    taken = []

    def loading(value: int) -> None:
        if value >= 350 and not taken:
            taken.append(value)
            cam.save("first-start-1-loading")
    w.chat.empty.progress.valueChanged.connect(loading)
    w.start()
    cam.wait(until=lambda: w.model_info is not None or w.error_row.isVisible())
    cam.save("first-start-2-welcome")
    if not taken:
        print("  the model was ready before its progress could be pictured", file=sys.stderr)
        cam.ok = False
    w.chat.empty.buttons[1].click()  # the word problem, asked with Auto
    cam.answer(w.answer_job, EXAMPLE_RIGHT)
    cam.save("first-start-3-answered")


def answer(cam: Camera) -> None:
    w = cam.window
    cam.wait(w.load_model(cam.settings))
    cam.answer(w.ask_example(WORD_PROBLEM), ARRIVES)  # with Auto, as the examples are asked
    cam.open_reasoning()
    cam.save(cam.scene.name)


def documents(cam: Camera) -> None:
    """A small real collection: this project's README and design notes."""
    w = cam.window
    folder = Path(os.environ["PONDER_HOME"]) / "docs"
    folder.mkdir()
    for name in ("README.md", "docs/architecture.md", "docs/thinking.md"):
        shutil.copy(ROOT / name, folder / Path(name).name)
    cam.wait(w.load_model(cam.settings))
    cam.wait(w.index("Ponder docs", [str(folder)]))
    w.composer.set_collection("Ponder docs")
    w.composer.budget.set_budget(0)
    cam.answer(w.send(DOCUMENTS_QUESTION), re.compile(r"dev\.py test|pytest"))
    cam.save("documents")


def models(cam: Camera) -> None:
    w = cam.window
    cam.wait(w.load_model(cam.settings))
    w.open_models()
    cam.wait(until=lambda: getattr(w, "models_dialog", None) is not None)
    cam.save("models", w.models_dialog)
    w.models_dialog.reject()


def _shoot(scene: Scene, out: Path) -> int:
    cam = Camera(scene, out)
    {"first-start": first_start, "documents": documents, "models": models}.get(scene.name, answer)(cam)
    cam.window.close()
    return 0 if cam.ok else 1


def main() -> int:
    args = sys.argv[1:]
    names = [s.name for s in SCENES]
    if "--model" in args:
        i = args.index("--model")
        os.environ["PONDER_SCREENSHOTS_MODEL"] = args[i + 1]
        del args[i:i + 2]
    if "--only" in args:
        i = args.index("--only")
        names = args[i + 1].split(",")
        del args[i:i + 2]
        unknown = set(names) - {s.name for s in SCENES}
        if unknown:
            print(f"screenshots: no scene {', '.join(sorted(unknown))}; scenes: "
                  f"{', '.join(s.name for s in SCENES)}", file=sys.stderr)
            return 2
    out = Path(args[0] if args else ROOT / "docs" / "screenshots").resolve()
    out.mkdir(parents=True, exist_ok=True)
    if scene := os.environ.get("PONDER_SCREENSHOTS_SCENE"):
        fields = json.loads(scene)
        return _shoot(Scene(**{**fields, "size": tuple(fields["size"])}), out)
    if not (os.environ.get("DISPLAY") and sys.platform == "linux"):
        return _under_xvfb([str(out), "--only", ",".join(names)])
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    return _run_scenes(out, names)


if __name__ == "__main__":
    sys.exit(main())
