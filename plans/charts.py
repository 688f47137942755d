"""Server-side SVG charts: no JavaScript, prints and goes into the PDF as it is. Pure."""

import math
from dataclasses import dataclass
from datetime import date
from html import escape

# 13-unit text on a 440-unit width prints at 8.4 pt when the chart is 100 mm wide (report.css).
WIDTH, HEIGHT = 440, 180
FONT = 13
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 16, 34


@dataclass(frozen=True)
class Point:
    on: date
    value: float
    label: str = ""


def _x_scale(first: date, last: date):
    span = max((last - first).days, 1)
    inner = WIDTH - LEFT - RIGHT

    def x(day: date) -> float:
        if first == last:
            return LEFT + inner / 2
        return LEFT + inner * (day - first).days / span

    return x


def _y_scale(low: float, high: float):
    span = (high - low) or 1
    inner = HEIGHT - TOP - BOTTOM

    def y(value: float) -> float:
        return TOP + inner * (1 - (value - low) / span)

    return y


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Whole-number ticks from low to high, at most about `count` steps, high included."""
    step = max(1, math.ceil((high - low) / count))
    ticks = list(range(int(low), int(high) + 1, step))
    if ticks[-1] != high:
        if high - ticks[-1] < step / 2 and len(ticks) > 1:
            ticks[-1] = high  # too close to label both
        else:
            ticks.append(high)
    return ticks


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def trend_chart(
    points: list[Point],
    *,
    low: float,
    high: float,
    markers: list[date] = (),
    title: str,
    lower_is_better: bool = True,
) -> str:
    """Score against date: a line through the points, dashed lines at session dates."""
    points = sorted(points, key=lambda p: p.on)
    days = [p.on for p in points] + list(markers)
    if not days:
        return ""
    first, last = min(days), max(days)
    x, y = _x_scale(first, last), _y_scale(low, high)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend-chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in _ticks(low, high):
        ty = y(tick)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}" '
            'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end" font-size="{FONT}" '
            f'fill="#555">{_number(tick)}</text>'
        )
    better = "lower is better" if lower_is_better else "higher is better"
    parts.append(
        f'<text x="{LEFT}" y="{HEIGHT - 4}" font-size="{FONT}" fill="#555">{escape(better)}</text>'
    )
    for day in sorted(set(markers)):
        mx = x(day)
        parts.append(
            f'<line class="session-marker" x1="{mx:.1f}" x2="{mx:.1f}" y1="{TOP}" '
            f'y2="{HEIGHT - BOTTOM}" stroke="#8aa4c8" stroke-width="1" stroke-dasharray="3 3">'
            f"<title>Session {day.isoformat()}</title></line>"
        )
    for day in (first, last) if first != last else (first,):
        anchor = "start" if day == first and first != last else "end"
        if first == last:
            anchor = "middle"
        parts.append(
            f'<text x="{x(day):.1f}" y="{HEIGHT - BOTTOM + 14}" font-size="{FONT}" fill="#555" '
            f'text-anchor="{anchor}">{day:%d %b %Y}</text>'
        )
    if len(points) > 1:
        path = " ".join(f"{x(p.on):.1f},{y(p.value):.1f}" for p in points)
        parts.append(
            f'<polyline class="trend" points="{path}" fill="none" stroke="#0d6efd" '
            'stroke-width="2"/>'
        )
    for p in points:
        label = escape(p.label or f"{p.on.isoformat()}: {_number(p.value)}")
        parts.append(
            f'<circle class="point" cx="{x(p.on):.1f}" cy="{y(p.value):.1f}" r="4" '
            f'fill="#0d6efd"><title>{label}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(bars: list[tuple[str, float]], *, title: str, unit: str = "") -> str:
    """Horizontal bars around zero (negative = decrease), labelled with their values."""
    if not bars:
        return ""
    width, row = 760, 26
    # Room for the longest label at about 7 px a character (12 px system font).
    label_width = min(420, 16 + 7 * max(len(name) for name, _ in bars))
    height = TOP + row * len(bars) + 10
    extent = max(abs(v) for _, v in bars) or 1
    inner = width - label_width - RIGHT - 40
    zero = label_width + inner / 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="bar-chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="{TOP - 6}" y2="{height - 6}" stroke="#999"/>',
    ]
    for index, (name, value) in enumerate(bars):
        top = TOP + index * row
        length = inner / 2 * abs(value) / extent
        start = zero - length if value < 0 else zero
        parts.append(
            f'<text x="{label_width - 8}" y="{top + 15}" text-anchor="end" font-size="12">'
            f"{escape(name)}</text>"
            f'<rect class="bar" x="{start:.1f}" y="{top + 4}" width="{max(length, 1):.1f}" '
            f'height="16" fill="{"#198754" if value < 0 else "#dc3545"}"/>'
            f'<text x="{zero + (inner / 2 + 4):.1f}" y="{top + 15}" font-size="12">'
            f"{_number(value)}{escape(unit)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
