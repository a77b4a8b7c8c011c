"""Hand-written SVG charts (no plotting dependency): small multiples of daily units and horizontal bars."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

WIDTH = 860
PANEL_HEIGHT = 150
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP = 56, 20, 44
BAR_COLOR, MA7_COLOR, MA28_COLOR = "#c7d7ee", "#1f5fbf", "#e07b00"
FONT = 'font-family="Helvetica, Arial, sans-serif"'


@dataclass(frozen=True)
class DailySeries:
    """One SKU's daily units with its 7- and 28-day moving averages, days ascending."""

    label: str
    days: Sequence[date]
    units: Sequence[float]
    ma_7d: Sequence[float]
    ma_28d: Sequence[float]


@dataclass(frozen=True)
class Bar:
    """One labelled bar with a note printed after it."""

    label: str
    value: float
    note: str = ""


def sku_trend_chart(title: str, series: Sequence[DailySeries]) -> str:
    """One panel per SKU: bars of daily units, the 7-day average as a line, the 28-day average dashed."""
    height = MARGIN_TOP + PANEL_HEIGHT * max(len(series), 1) + 30
    parts = [_open(height), _text(MARGIN_LEFT, 22, title, size=16, weight="bold"), _legend()]
    if not series:
        parts.append(_text(MARGIN_LEFT, MARGIN_TOP + 30, "No sales yet."))
    for index, one in enumerate(series):
        parts.append(_panel(one, MARGIN_TOP + index * PANEL_HEIGHT))
    parts.append("</svg>")
    return "\n".join(parts)


def bar_chart(title: str, bars: Sequence[Bar], unit: str) -> str:
    """Horizontal bars, longest first, each with its value and note."""
    row, label_width = 28, 210
    height = MARGIN_TOP + row * max(len(bars), 1) + 20
    top = max((bar.value for bar in bars), default=0) or 1
    span = WIDTH - label_width - 260
    parts = [_open(height), _text(MARGIN_LEFT, 22, title, size=16, weight="bold")]
    if not bars:
        parts.append(_text(MARGIN_LEFT, MARGIN_TOP + 16, "No sales yet."))
    for index, bar in enumerate(sorted(bars, key=lambda b: -b.value)):
        y = MARGIN_TOP + index * row
        length = span * bar.value / top
        parts.append(_text(label_width - 8, y + 16, bar.label, anchor="end"))
        parts.append(f'<rect x="{label_width}" y="{y + 4}" width="{length:.1f}" height="{row - 10}" fill="{MA7_COLOR}"/>')
        parts.append(_text(label_width + length + 6, y + 16, f"{bar.value:,.0f} {unit}  {bar.note}".rstrip(), color="#333"))
    parts.append("</svg>")
    return "\n".join(parts)


def _panel(one: DailySeries, top: float) -> str:
    plot_height = PANEL_HEIGHT - 40
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    count = max(len(one.days), 1)
    step = (right - left) / count
    peak = max([*one.units, *one.ma_7d, *one.ma_28d, 1])
    base = top + 20 + plot_height

    def y(value: float) -> float:
        return base - plot_height * value / peak

    def x(index: int) -> float:
        return left + step * (index + 0.5)

    parts = [_text(left, top + 14, one.label, weight="bold")]
    parts.append(f'<line x1="{left}" y1="{base}" x2="{right}" y2="{base}" stroke="#999" stroke-width="1"/>')
    parts.append(_text(left - 6, y(peak) + 4, f"{peak:,.0f}", anchor="end", size=10, color="#666"))
    parts.append(_text(left - 6, base + 4, "0", anchor="end", size=10, color="#666"))
    for index, units in enumerate(one.units):
        if units:
            parts.append(
                f'<rect x="{x(index) - step * 0.4:.1f}" y="{y(units):.1f}" width="{step * 0.8:.1f}" '
                f'height="{base - y(units):.1f}" fill="{BAR_COLOR}"/>'
            )
    for values, color, dash in ((one.ma_28d, MA28_COLOR, ' stroke-dasharray="5 3"'), (one.ma_7d, MA7_COLOR, "")):
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
    if one.days:
        parts.append(_text(left, base + 14, one.days[0].isoformat(), size=10, color="#666"))
        parts.append(_text(right, base + 14, one.days[-1].isoformat(), size=10, color="#666", anchor="end"))
    return "\n".join(parts)


def _legend() -> str:
    x = WIDTH - 360
    return "\n".join(
        [
            f'<rect x="{x}" y="12" width="12" height="12" fill="{BAR_COLOR}"/>',
            _text(x + 16, 22, "units per day", size=11),
            f'<line x1="{x + 110}" y1="18" x2="{x + 134}" y2="18" stroke="{MA7_COLOR}" stroke-width="2"/>',
            _text(x + 138, 22, "7-day average", size=11),
            f'<line x1="{x + 230}" y1="18" x2="{x + 254}" y2="18" stroke="{MA28_COLOR}" stroke-width="2" stroke-dasharray="5 3"/>',
            _text(x + 258, 22, "28-day average", size=11),
        ]
    )


def _open(height: float) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}">\n<rect width="100%" height="100%" fill="white"/>'
    )


def _text(x: float, y: float, text: str, *, size: int = 12, weight: str = "normal", anchor: str = "start", color: str = "#111") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" {FONT} font-size="{size}" font-weight="{weight}" '
        f'text-anchor="{anchor}" fill="{color}">{escape(text)}</text>'
    )
