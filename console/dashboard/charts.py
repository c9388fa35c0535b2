"""Server-rendered SVG charts for the dashboard: no JavaScript library, nothing to vendor.

Two shapes cover every panel: hourly stacked bars (a time series) and horizontal bars (one
row per cluster / integration). Every value is escaped by ``format_html``; every bar carries
a ``<title>`` (the browser's tooltip) and ``data-series``/``data-value`` attributes, so the
numbers are readable by people, screen readers and tests alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from console.dashboard.selectors import Series

# Colour-blind-safe palette (Okabe-Ito), one colour per meaning across all panels.
COLOURS = {
    "created": "#009E73",
    "updated": "#0072B2",
    "deleted": "#D55E00",
    "succeeded": "#009E73",
    "failed": "#D55E00",
    "other": "#999999",
    "accepted": "#009E73",
    "duplicate": "#E69F00",
    "rejected": "#D55E00",
    "new": "#CC79A7",
    "ok": "#009E73",
    "warn": "#E69F00",
    "bad": "#D55E00",
    "queue": "#0072B2",
}


def nice_ceiling(value: float) -> float:
    """The axis maximum: 1, 2 or 5 times a power of ten, at or above ``value`` (min. 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _number(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:g}"


def stacked_bars(series: Series, *, label: str, width: int = 440, height: int = 150) -> SafeString:
    """Hourly stacked bars; the x axis labels every sixth hour (UTC)."""
    left, right, top, bottom = 34, 16, 8, 18
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(series.hours)
    names = list(series.values)
    totals = [sum(series.values[name][i] for name in names) for i in range(n)]
    ceiling = nice_ceiling(max(totals, default=0))
    slot = plot_w / max(n, 1)
    bar_w = max(1.0, slot * 0.78)
    parts: list[SafeString] = []
    for fraction in (0, 0.5, 1):
        y = top + plot_h - fraction * plot_h
        parts.append(
            format_html(
                '<line class="castiel-axis" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                '<text x="{}" y="{}" text-anchor="end">{}</text>',
                left,
                width - right,
                f"{y:.1f}",
                f"{y:.1f}",
                left - 4,
                f"{y + 3:.1f}",
                _number(ceiling * fraction),
            )
        )
    for i, hour in enumerate(series.hours):
        x = left + i * slot + (slot - bar_w) / 2
        base = top + plot_h
        for name in names:
            value = series.values[name][i]
            if not value:
                continue
            h = value / ceiling * plot_h
            base -= h
            parts.append(
                format_html(
                    '<rect class="castiel-bar" x="{}" y="{}" width="{}" height="{}" fill="{}" '
                    'data-series="{}" data-value="{}"><title>{} UTC — {}: {}</title></rect>',
                    f"{x:.1f}",
                    f"{base:.1f}",
                    f"{bar_w:.1f}",
                    f"{max(h, 0.5):.1f}",
                    COLOURS.get(name, "#777777"),
                    name,
                    value,
                    f"{hour:%H:%M}",
                    name,
                    value,
                )
            )
        if i % 6 == 0 or i == n - 1:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" text-anchor="middle">{}</text>',
                    f"{x + bar_w / 2:.1f}",
                    height - 4,
                    f"{hour:%H:%M}",
                )
            )
    if not any(totals):
        parts.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="middle">nothing in the last {} hours</text>',
                left + plot_w / 2,
                top + plot_h / 2,
                n,
            )
        )
    return _svg(width, height, label, parts, _series_summary(series, totals))


def _series_summary(series: Series, totals: list[float]) -> str:
    """The chart in words (its text equivalent): totals per series and the busiest hour."""
    n = len(series.hours)
    if not any(totals):
        return f"nothing in the last {n} hours"
    sums = ", ".join(f"{series.total(name):g} {name}" for name in series.values)
    peak = max(range(n), key=lambda i: totals[i])
    return (
        f"last {n} hours: {sums}; busiest hour {series.hours[peak]:%H:%M} UTC with {totals[peak]:g}"
    )


@dataclass
class Bar:
    label: str
    value: float
    text: str  # shown at the bar's end
    colour: str = COLOURS["queue"]
    title: str = ""


def horizontal_bars(
    bars: list[Bar],
    *,
    label: str,
    maximum: float | None = None,
    width: int = 440,
    empty: str = "none",
) -> SafeString:
    """One row per item; bars share one scale (``maximum``, or the largest value)."""
    row_h, label_w, text_w = 22, 150, 96
    height = max(row_h, row_h * len(bars)) + 4
    scale = (
        maximum if maximum is not None else nice_ceiling(max((b.value for b in bars), default=0))
    )
    plot_w = width - label_w - text_w
    parts: list[SafeString] = []
    for i, bar in enumerate(bars):
        y = 2 + i * row_h
        w = 0 if not scale else max(0.0, min(1.0, bar.value / scale)) * plot_w
        parts.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="end">{}</text>'
                '<rect class="castiel-axis-bg" x="{}" y="{}" width="{}" height="{}" '
                'fill="currentColor" fill-opacity="0.06"/>'
                '<rect class="castiel-bar" x="{}" y="{}" width="{}" height="{}" fill="{}" '
                'data-series="{}" data-value="{}"><title>{}</title></rect>'
                '<text x="{}" y="{}">{}</text>',
                label_w - 6,
                y + 14,
                _truncate(bar.label, 24),
                label_w,
                y + 3,
                f"{plot_w:.1f}",
                row_h - 6,
                label_w,
                y + 3,
                f"{max(w, 1.0 if bar.value else 0):.1f}",
                row_h - 6,
                bar.colour,
                bar.label,
                bar.value,
                bar.title or f"{bar.label}: {bar.text}",
                label_w + plot_w + 6,
                y + 14,
                bar.text,
            )
        )
    if not bars:
        parts.append(format_html('<text x="{}" y="15">{}</text>', label_w, empty))
    summary = "; ".join(f"{bar.label}: {bar.text}" for bar in bars) or empty
    return _svg(width, height, label, parts, summary)


def legend(names: list[str]) -> SafeString:
    return format_html(
        '<div class="castiel-legend">{}</div>',
        format_html_join(
            "", '<span><i style="background:{}"></i>{}</span>', ((COLOURS[n], n) for n in names)
        ),
    )


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(
    width: int, height: int, label: str, parts: list[SafeString], summary: str = ""
) -> SafeString:
    """The chart as an image whose accessible name is its title and the numbers in words
    (``summary``), also given as the SVG's ``<desc>``."""
    spoken = f"{label}: {summary}" if summary else label
    return format_html(
        '<svg class="castiel-chart" viewBox="0 0 {} {}" role="img" aria-label="{}" '
        'xmlns="http://www.w3.org/2000/svg"><desc>{}</desc>{}</svg>',
        width,
        height,
        spoken,
        spoken,
        mark_safe("".join(parts)),  # noqa: S308 - every part was built with format_html
    )
