"""The Qt binding itself: PySide6 6.12.0 (with Python 3.11) released a reference to True on every
Signal.emit, and the interpreter aborted ("bool_dealloc") after about 100,000 signals — a few long answers.
Run in a child process, so a bad binding fails this test instead of killing the whole test run."""
from __future__ import annotations

import subprocess
import sys

EMITS = 300_000
SCRIPT = f"""
import sys
from PySide6.QtCore import QObject, QCoreApplication, Signal
app = QCoreApplication([])
class Source(QObject):
    moved = Signal(object)
source = Source()
seen = []
source.moved.connect(seen.append)
before = sys.getrefcount(True)
for i in range({EMITS}):
    source.moved.emit(i)
print(len(seen), sys.getrefcount(True) - before)
"""


def test_emitting_many_signals_keeps_reference_counts_intact():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    count, drift = map(int, done.stdout.split())
    assert count == EMITS
    assert abs(drift) < 1000, f"True's reference count moved by {drift} over {EMITS} emits"
