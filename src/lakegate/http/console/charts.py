"""The Activity page's charts, drawn on the server as SVG shapes (no script, no chart library in the browser):
requests and data handed out per recipient per day (stacked bars), and errors by code (horizontal bars).

Hand-written because what is needed is a few rectangles and labels; a plotting library would bring a renderer
and fonts to the server for that.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from lakegate.http.html import human_size

# Colour-blind-safe palette (Okabe-Ito), one colour per recipient in legend order; the rest share grey.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
OTHERS = "#999999"
WIDTH, HEIGHT = 720, 240
LEFT, BOTTOM, TOP = 56, 28, 12


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str  # the tooltip (<title>)


@dataclass
class Chart:
    title: str
    description: str
    kind: str = "stacked"  # stacked bars per day, or "bars": one horizontal bar per key
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    y_labels: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    total: int = 0
    total_text: str = "0"


def _nice_max(value: int) -> int:
    """The axis maximum: 1, 2 or 5 times a power of ten, at least `value`."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if value <= factor * step:
                return factor * step
        step *= 10


def _short(value: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if value >= size:
            return f"{value / size:g}{unit}"
    return str(value)


def stacked_by_day(
    title: str,
    description: str,
    days: list[date],
    series: dict[str, Counter[date]],
    unit: str,
    unit_format: Callable[[int], str] | None = None,
) -> Chart:
    """Bars per day, stacked by recipient (the 7 busiest get colours, the others one grey)."""
    chart = Chart(title, description)
    ranked = sorted(series, key=lambda name: (-sum(series[name].values()), name))
    colors = {name: PALETTE[i] if i < len(PALETTE) - 1 else OTHERS for i, name in enumerate(ranked)}
    totals = {day: sum(series[name][day] for name in series) for day in days}
    chart.total = sum(totals.values())
    top = _nice_max(max(totals.values(), default=0) or 1)
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(days))
    label = unit_format or _short
    for tick in (0, top // 2, top) if top > 1 else (0, top):
        chart.y_labels.append((TOP + plot_h - plot_h * tick / top, label(tick)))
    every = max(1, -(-len(days) // 7))  # at most 7 date labels
    for i, day in enumerate(days):
        x = LEFT + i * slot
        if i % every == 0:
            chart.x_labels.append((x + slot / 2, day.strftime("%b %d")))
        base: float = TOP + plot_h
        for name in ranked:
            value = series[name][day]
            if not value:
                continue
            height = plot_h * value / top
            base -= height
            chart.bars.append(
                Bar(
                    x + slot * 0.15,
                    base,
                    slot * 0.7,
                    height,
                    colors[name],
                    f"{day}: {name}, {label(value)} {unit}".rstrip(),
                )
            )
    chart.total_text = label(chart.total)
    chart.legend = [(colors[name], name) for name in ranked[: len(PALETTE) - 1]]
    if len(ranked) >= len(PALETTE):
        chart.legend.append((OTHERS, f"{len(ranked) - len(PALETTE) + 1} others"))
    return chart


def horizontal(title: str, description: str, counts: Counter[str]) -> Chart:
    """One bar per key, longest first (at most 10)."""
    rows = counts.most_common(10)
    row_h = 26
    chart = Chart(title, description, kind="bars", height=TOP + row_h * max(1, len(rows)) + 8)
    chart.total = sum(counts.values())
    chart.total_text = str(chart.total)
    top = _nice_max(rows[0][1] if rows else 1)
    left, plot_w = 230, WIDTH - 230 - 60
    for i, (key, value) in enumerate(rows):
        y = TOP + i * row_h
        chart.y_labels.append((y + row_h / 2, key))
        chart.bars.append(Bar(left, y + 4, plot_w * value / top, row_h - 8, "#D55E00", f"{key}: {value}"))
        chart.x_labels.append((left + plot_w * value / top + 6, str(value)))
    return chart


def activity_charts(events: Iterable[Any], first: date, last: date) -> list[Chart]:
    """Requests, bytes of data (the files listed by signed URL) and directory credentials per recipient per
    day, and errors by code; from audit rows (at, recipient, operation, mode, files, data_bytes, outcome).
    Admin changes are not requests."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    requests: dict[str, Counter[date]] = defaultdict(Counter)
    data: dict[str, Counter[date]] = defaultdict(Counter)
    credentials: dict[str, Counter[date]] = defaultdict(Counter)
    errors: Counter[str] = Counter()
    for row in events:
        if row.mode == "admin":
            continue
        day, who = row.at.date(), row.recipient or "(unauthenticated)"
        requests[who][day] += 1
        if row.outcome != "ok":
            errors[row.outcome] += 1
        elif row.operation == "temporary-credentials":
            credentials[who][day] += 1
        elif row.data_bytes:
            data[who][day] += int(row.data_bytes)
    return [
        stacked_by_day(
            "Requests per day", "Requests of each recipient, per day (UTC)", days, requests, "requests"
        ),
        stacked_by_day(
            "Data handed out per day",
            "Bytes of the files each recipient received signed URLs for, per day (UTC)",
            days,
            data,
            "",
            unit_format=human_size,
        ),
        stacked_by_day(
            "Credentials handed out per day",
            "Directory-access credentials each recipient received, per day (UTC)",
            days,
            credentials,
            "credentials",
        ),
        horizontal("Errors by code", "Refused or failed requests in the period, by error code", errors),
    ]
