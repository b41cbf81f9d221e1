"""Throughput charts: jobs finished and failed per interval, drawn as SVG by the server.

A window (last hour, day or week) is cut into equal intervals aligned to the UTC clock, so a bar keeps its
place between refreshes; the newest interval is the one still running. The counts come from one query per
chart (`balsam.server.crud.events.per_interval`); this module only lays out the bars and the axes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from balsam.server.dashboard.states import FAILURE_STATES, FINISHED_STATE

SERIES: dict[str, list[str]] = {"finished": [FINISHED_STATE], "failed": list(FAILURE_STATES)}


@dataclass(frozen=True)
class Window:
    key: str
    title: str
    span: timedelta
    interval: timedelta
    tick_every: int  # label every n-th interval on the time axis
    tick_format: str  # strftime of those labels (UTC)


WINDOWS = {
    w.key: w
    for w in (
        Window("hour", "Last hour", timedelta(hours=1), timedelta(minutes=1), 10, "%H:%M"),
        Window("day", "Last 24 hours", timedelta(days=1), timedelta(minutes=30), 8, "%H:%M"),
        Window("week", "Last 7 days", timedelta(days=7), timedelta(hours=3), 8, "%a %d"),
    )
}

# The SVG's own coordinate system (it scales to the width of its box).
WIDTH, HEIGHT = 1000.0, 250.0
LEFT, RIGHT, TOP, BOTTOM = 48.0, 8.0, 12.0, 30.0


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime
    finished: int
    failed: int


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    finished_y: float
    finished_h: float
    failed_y: float
    failed_h: float
    title: str


@dataclass
class Chart:
    window: Window
    start: datetime
    end: datetime
    intervals: list[Interval]
    bars: list[Bar] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    width: float = WIDTH
    height: float = HEIGHT
    plot_left: float = LEFT
    plot_right: float = WIDTH - RIGHT
    plot_bottom: float = HEIGHT - BOTTOM

    @property
    def finished(self) -> int:
        return sum(i.finished for i in self.intervals)

    @property
    def failed(self) -> int:
        return sum(i.failed for i in self.intervals)

    @property
    def summary(self) -> str:
        per = _duration(self.window.interval)
        return (
            f"{self.window.title}: {self.finished:,} jobs finished and {self.failed:,} failure events, "
            f"per {per} interval."
        )


def window_bounds(window: Window, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) covering `now`, with `end` on an interval boundary (intervals aligned to the epoch)."""
    step = window.interval.total_seconds()
    epoch = datetime(1970, 1, 1)
    end = epoch + timedelta(seconds=math.floor((now - epoch).total_seconds() / step) * step + step)
    return end - window.span, end


def build(window: Window, start: datetime, counts: dict[int, tuple[int, int]]) -> Chart:
    """Lay out the chart from {interval index: (finished, failed)}."""
    n = round(window.span / window.interval)
    intervals = [
        Interval(start + window.interval * i, start + window.interval * (i + 1), *counts.get(i, (0, 0)))
        for i in range(n)
    ]
    chart = Chart(window, start, start + window.span, intervals)
    top = _nice_ceiling(max((i.finished + i.failed for i in intervals), default=0))
    plot_h = chart.plot_bottom - TOP
    slot = (chart.plot_right - chart.plot_left) / n
    gap = min(2.0, slot * 0.2)

    def y(value: float) -> float:
        return chart.plot_bottom - plot_h * value / top

    for index, item in enumerate(intervals):
        x = chart.plot_left + slot * index + gap / 2
        finished_top = y(item.finished)
        failed_top = y(item.finished + item.failed)
        label = f"{item.start:%a %H:%M} to {item.end:%H:%M} UTC: {item.finished:,} finished, {item.failed:,} failed"
        chart.bars.append(
            Bar(
                x=round(x, 2),
                width=round(slot - gap, 2),
                finished_y=round(finished_top, 2),
                finished_h=round(chart.plot_bottom - finished_top, 2),
                failed_y=round(failed_top, 2),
                failed_h=round(finished_top - failed_top, 2),
                title=label,
            )
        )
        if index % window.tick_every == 0:
            chart.x_ticks.append((round(chart.plot_left + slot * index, 2), item.start.strftime(window.tick_format)))
    for k in range(5):
        value = top * k / 4
        chart.y_ticks.append((round(y(value), 2), f"{value:,.0f}"))
    return chart


def _nice_ceiling(value: int) -> float:
    """The top of the axis: 4 equal whole steps of a round size (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 x 10^k), the
    smallest that reaches `value`, so that the five axis labels are whole numbers."""
    wanted = max(value, 1) / 4
    magnitude = 10 ** math.floor(math.log10(wanted))
    sizes = (s * magnitude for s in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10))
    step = next(size for size in sizes if size >= wanted and size == int(size))
    return float(step * 4)


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes % 60:
        return f"{minutes}-minute"
    return f"{minutes // 60}-hour"
