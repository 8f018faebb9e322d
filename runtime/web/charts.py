"""Dashboard tiles as numbers and SVG charts, laid out on the server: the browser draws
them without a script, and each chart carries its data as a table for screen readers."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from runtime.web.widgets import display

if TYPE_CHECKING:
    from runtime.formatting import Formats

BAR_HEIGHT = 22
BAR_GAP = 8
LABEL_WIDTH = 140
CHART_WIDTH = 480
LINE_HEIGHT = 200
LINE_PADDING = 32


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: str
    y: int
    width: float


@dataclass(frozen=True, slots=True)
class BarChart:
    bars: tuple[Bar, ...]
    width: int
    height: int
    label_width: int


@dataclass(frozen=True, slots=True)
class LineChart:
    points: str
    dots: tuple[tuple[float, float, str, str], ...]
    """(x, y, label, value) of each point."""
    width: int
    height: int
    top: str
    """The value at the top of the scale."""


def number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def bar_chart(rows: list[tuple[Any, Any]], formats: Formats | None = None) -> BarChart:
    """One horizontal bar per (group, value), scaled to the largest value; labels and
    values as the reader of ``formats`` reads them."""
    largest = max((number(v) for _, v in rows), default=0.0) or 1.0
    span = CHART_WIDTH - LABEL_WIDTH - 110  # room for the value after the longest bar
    bars = tuple(
        Bar(
            label=display(group, None, formats) or "(empty)",
            value=display(value, None, formats) or "0",
            y=i * (BAR_HEIGHT + BAR_GAP),
            width=max(0.0, number(value)) / largest * span,
        )
        for i, (group, value) in enumerate(rows)
    )
    height = max(1, len(bars)) * (BAR_HEIGHT + BAR_GAP)
    return BarChart(bars, CHART_WIDTH, height, LABEL_WIDTH)


def line_chart(rows: list[tuple[Any, Any]], formats: Formats | None = None) -> LineChart:
    """A line through (group, value) in the groups' order, from zero to the largest."""
    values = [number(v) for _, v in rows]
    largest = max(values, default=0.0) or 1.0
    inner_w = CHART_WIDTH - 2 * LINE_PADDING
    inner_h = LINE_HEIGHT - 2 * LINE_PADDING
    step = inner_w / (len(rows) - 1) if len(rows) > 1 else 0.0
    dots = []
    for i, ((group, value), amount) in enumerate(zip(rows, values, strict=True)):
        x = LINE_PADDING + (i * step if len(rows) > 1 else inner_w / 2)
        y = LINE_PADDING + inner_h - max(0.0, amount) / largest * inner_h
        label = display(group, None, formats) or "(empty)"
        dots.append((round(x, 1), round(y, 1), label, display(value, None, formats) or "0"))
    points = " ".join(f"{x},{y}" for x, y, _, _ in dots)
    top = display(max((v for _, v in rows), key=number, default=0), None, formats) if rows else "0"
    return LineChart(points, tuple(dots), CHART_WIDTH, LINE_HEIGHT, top)
