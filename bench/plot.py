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

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPolygonF

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


def _diamond(c: QPointF, r: float) -> QPolygonF:
    return QPolygonF([c + QPointF(0, -r), c + QPointF(r, 0), c + QPointF(0, r), c + QPointF(-r, 0)])


class _Chart:
    """One picture: the plot area, its log-x / linear-y mapping, and the label boxes drawn so far."""

    def __init__(self, painter: QPainter, series: dict[str, list[Point]]) -> None:
        self.p = painter
        self.area = QRectF(MARGIN_LEFT, MARGIN_TOP, WIDTH - MARGIN_LEFT - MARGIN_RIGHT,
                           HEIGHT - MARGIN_TOP - MARGIN_BOTTOM)
        self.low, self.high = _decades(series)
        self.taken: list[QRectF] = []  # a new label goes where it overlaps none of these, if it can
        self.ink = QPen(QColor("#333333"))

    def at(self, tokens: float, accuracy: float) -> QPointF:
        x = (math.log10(max(tokens, 1.0)) - self.low) / (self.high - self.low)
        return QPointF(self.area.left() + x * self.area.width(), self.area.bottom() - accuracy * self.area.height())

    def axes(self, title: str) -> None:
        p, area, grid = self.p, self.area, QPen(QColor("#dddddd"))
        for tick in _ticks(self.low, self.high):
            x = self.at(tick, 0).x()
            p.setPen(grid)
            p.drawLine(QPointF(x, area.top()), QPointF(x, area.bottom()))
            p.setPen(self.ink)
            p.drawText(QRectF(x - 30, area.bottom() + 6, 60, 18), Qt.AlignmentFlag.AlignCenter, f"{tick:g}")
        for i in range(6):
            y = self.at(1, i / 5).y()
            p.setPen(grid)
            p.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
            p.setPen(self.ink)
            p.drawText(QRectF(area.left() - 50, y - 9, 42, 18), Qt.AlignmentFlag.AlignRight, f"{i / 5:.1f}")
        p.drawRect(area)
        p.drawText(QRectF(area.left(), HEIGHT - 36, area.width(), 20), Qt.AlignmentFlag.AlignCenter,
                   "mean tokens per question (thinking + answer, log scale)")
        p.save()
        p.translate(22, area.center().y())
        p.rotate(-90)
        p.drawText(QRectF(-100, -10, 200, 20), Qt.AlignmentFlag.AlignCenter, "accuracy")
        p.restore()
        font = p.font()
        bold = QFont(font)
        bold.setPixelSize(16)
        bold.setBold(True)
        p.setFont(bold)
        p.drawText(QRectF(0, 16, WIDTH, 24), Qt.AlignmentFlag.AlignCenter, title)
        p.setFont(font)

    def series(self, points: list[Point], colour: QColor) -> None:
        """Fixed settings as dots joined in order, Auto as a diamond; points on top of each other share a label."""
        p = self.p
        fixed = [pt for pt in points if not pt.is_auto]
        p.setPen(QPen(colour, 2))
        for a, b in zip(fixed, fixed[1:]):
            p.drawLine(self.at(a.tokens, a.accuracy), self.at(b.tokens, b.accuracy))
        labels: list[tuple[QPointF, list[str]]] = []
        for pt in points:
            c = self.at(pt.tokens, pt.accuracy)
            p.setPen(QPen(QColor("black"), 2) if pt.is_auto else QPen(colour, 1))
            p.setBrush(colour)
            if pt.is_auto:
                p.drawPolygon(_diamond(c, 10))
            else:
                p.drawEllipse(c, 5, 5)
            near = next((names for at, names in labels if abs(at.x() - c.x()) + abs(at.y() - c.y()) < 6), None)
            if near is None:
                labels.append((c, [pt.label]))
            else:
                near.append(pt.label)
        p.setPen(QPen(colour))
        for c, names in labels:
            self.label(c, "=".join(names))

    def label(self, c: QPointF, text: str) -> None:
        box = self.p.fontMetrics().boundingRect(text)
        w, h = box.width() + 2, box.height()
        tries = [QRectF(c.x() + 9, c.y() - h - 4, w, h), QRectF(c.x() + 9, c.y() + 5, w, h),
                 QRectF(c.x() - w - 9, c.y() - h - 4, w, h), QRectF(c.x() - w - 9, c.y() + 5, w, h)]
        where = next((r for r in tries if not any(r.intersects(t) for t in self.taken)), tries[0])
        self.taken.append(where)
        self.p.drawText(where, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)

    def legend(self, names: list[str]) -> None:
        p, x = self.p, self.area.right()
        for n, name in enumerate(names):
            y = self.area.top() + 10 + 24 * n
            p.setPen(QPen(QColor(PALETTE[n % len(PALETTE)]), 3))
            p.drawLine(QPointF(x + 20, y), QPointF(x + 44, y))
            p.setPen(self.ink)
            p.drawText(QPointF(x + 52, y + 5), name)
        y = self.area.top() + 10 + 24 * len(names)
        p.setPen(QPen(QColor("black"), 2))
        p.setBrush(QColor("#999999"))
        p.drawPolygon(_diamond(QPointF(x + 32, y), 8))
        p.drawText(QPointF(x + 52, y + 5), "Auto")


def draw_sweep(series: dict[str, list[Point]], path: Path, title: str) -> Path:
    """Write the picture as a PNG at `path` (folders made as needed); returns the path."""
    app = _application()  # noqa: F841 (kept alive while painting)
    image = QImage(WIDTH, HEIGHT, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    font = QFont()
    font.setPixelSize(13)
    painter.setFont(font)
    chart = _Chart(painter, series)
    chart.axes(title)
    for n, points in enumerate(series.values()):
        chart.series(points, QColor(PALETTE[n % len(PALETTE)]))
    chart.legend(list(series))
    painter.end()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(path), "PNG"):
        raise OSError(f"Could not write the plot to {path}.")
    return path
