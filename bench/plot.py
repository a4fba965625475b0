"""The budget sweep as a picture: accuracy against mean tokens per question, one series per question set.

Drawn with QPainter on a QImage (PySide6 is already a dependency), off-screen
when there is no display. Tokens are on a log scale; fixed settings are dots
joined in budget order, Auto is a larger diamond.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

WIDTH, HEIGHT = 960, 640
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 80, 200, 60, 70
PALETTE = ("#1f6fb4", "#2b9a3e", "#d0392b", "#8e44ad", "#d68910")


@dataclass(frozen=True, slots=True)
class Point:
    label: str
    tokens: float
    accuracy: float
    is_auto: bool = False


def _application():
    """Qt needs an application object to render text; made off-screen when there is no display."""
    if sys.platform == "linux" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


def _decades(series: dict[str, list[Point]]) -> tuple[int, int]:
    values = [max(p.tokens, 1.0) for points in series.values() for p in points] or [1.0, 10.0]
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    return low, max(high, low + 1)


def _ticks(low: int, high: int) -> list[float]:
    return [m * 10.0 ** k for k in range(low, high + 1) for m in (1, 2, 5) if m * 10.0 ** k <= 10.0 ** high]


def draw_sweep(series: dict[str, list[Point]], path: Path, title: str) -> Path:
    """Write the picture as a PNG at `path` (folders made as needed); returns the path."""
    app = _application()  # noqa: F841 (kept alive while painting)
    from PySide6.QtCore import QPointF, QRectF, Qt
    from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPolygonF

    image = QImage(WIDTH, HEIGHT, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    plot = QRectF(MARGIN_LEFT, MARGIN_TOP, WIDTH - MARGIN_LEFT - MARGIN_RIGHT, HEIGHT - MARGIN_TOP - MARGIN_BOTTOM)
    low, high = _decades(series)

    def at(tokens: float, accuracy: float) -> QPointF:
        x = (math.log10(max(tokens, 1.0)) - low) / (high - low)
        return QPointF(plot.left() + x * plot.width(), plot.bottom() - accuracy * plot.height())

    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    font = QFont()
    font.setPixelSize(13)
    p.setFont(font)
    grid, ink = QPen(QColor("#dddddd")), QPen(QColor("#333333"))
    for tick in _ticks(low, high):
        x = at(tick, 0).x()
        p.setPen(grid)
        p.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        p.setPen(ink)
        p.drawText(QRectF(x - 30, plot.bottom() + 6, 60, 18), Qt.AlignmentFlag.AlignCenter, f"{tick:g}")
    for i in range(6):
        y = at(1, i / 5).y()
        p.setPen(grid)
        p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        p.setPen(ink)
        p.drawText(QRectF(plot.left() - 50, y - 9, 42, 18), Qt.AlignmentFlag.AlignRight, f"{i / 5:.1f}")
    p.drawRect(plot)
    p.drawText(QRectF(plot.left(), HEIGHT - 36, plot.width(), 20), Qt.AlignmentFlag.AlignCenter,
               "mean tokens per question (thinking + answer, log scale)")
    p.save()
    p.translate(22, plot.center().y())
    p.rotate(-90)
    p.drawText(QRectF(-100, -10, 200, 20), Qt.AlignmentFlag.AlignCenter, "accuracy")
    p.restore()
    bold = QFont(font)
    bold.setPixelSize(16)
    bold.setBold(True)
    p.setFont(bold)
    p.drawText(QRectF(0, 16, WIDTH, 24), Qt.AlignmentFlag.AlignCenter, title)
    p.setFont(font)

    taken: list[QRectF] = []  # label boxes already drawn: a new label goes where it overlaps none, if it can
    for n, (name, points) in enumerate(series.items()):
        colour = QColor(PALETTE[n % len(PALETTE)])
        fixed = [pt for pt in points if not pt.is_auto]
        p.setPen(QPen(colour, 2))
        for a, b in zip(fixed, fixed[1:]):
            p.drawLine(at(a.tokens, a.accuracy), at(b.tokens, b.accuracy))
        labels: list[tuple[QPointF, list[str]]] = []  # points drawn on top of each other share one label
        for pt in points:
            c = at(pt.tokens, pt.accuracy)
            p.setPen(QPen(QColor("black") if pt.is_auto else colour, 2 if pt.is_auto else 1))
            p.setBrush(colour)
            if pt.is_auto:
                p.drawPolygon(QPolygonF([c + QPointF(0, -10), c + QPointF(10, 0), c + QPointF(0, 10),
                                         c + QPointF(-10, 0)]))
            else:
                p.drawEllipse(c, 5, 5)
            near = next((names for where, names in labels if abs(where.x() - c.x()) + abs(where.y() - c.y()) < 6),
                        None)
            if near is None:
                labels.append((c, [pt.label]))
            else:
                near.append(pt.label)
        p.setPen(QPen(colour))
        for c, names in labels:
            text = "=".join(names)
            box = p.fontMetrics().boundingRect(text)
            w, h = box.width() + 2, box.height()
            tries = [QRectF(c.x() + 9, c.y() - h - 4, w, h), QRectF(c.x() + 9, c.y() + 5, w, h),
                     QRectF(c.x() - w - 9, c.y() - h - 4, w, h), QRectF(c.x() - w - 9, c.y() + 5, w, h)]
            where = next((r for r in tries if not any(r.intersects(t) for t in taken)), tries[0])
            taken.append(where)
            p.drawText(where, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
        y = plot.top() + 10 + 24 * n
        p.setPen(QPen(colour, 3))
        p.drawLine(QPointF(plot.right() + 20, y), QPointF(plot.right() + 44, y))
        p.setPen(ink)
        p.drawText(QPointF(plot.right() + 52, y + 5), name)
    y = plot.top() + 10 + 24 * len(series)
    c = QPointF(plot.right() + 32, y)
    p.setPen(QPen(QColor("black"), 2))
    p.setBrush(QColor("#999999"))
    p.drawPolygon(QPolygonF([c + QPointF(0, -8), c + QPointF(8, 0), c + QPointF(0, 8), c + QPointF(-8, 0)]))
    p.drawText(QPointF(plot.right() + 52, y + 5), "Auto")
    p.end()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(path), "PNG"):
        raise OSError(f"Could not write the plot to {path}.")
    return path
