"""Inline SVG bar charts for the admin dashboard: no script, no CDN, no inline style.

Only SVG presentation attributes are used (``fill``, ``width``...), which the pages' Content
Security Policy (``style-src 'self'``, no inline script) allows. Every chart has a ``<title>`` and
``<desc>`` and the page shows the same figures as a table, for screen readers and for copying.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

__all__ = ["Bar", "bar_chart"]

Bar = tuple[str, Sequence[int]]

#: colour-blind-safe pair (Okabe-Ito blue and vermillion), then a neutral grey
COLOURS = ("#0072B2", "#D55E00", "#999999")
_ROW = 26
_LABEL_W = 150
_BAR_W = 320


def bar_chart(
    chart_id: str,
    title: str,
    bars: Sequence[Bar],
    series: Sequence[str],
    *,
    empty: str = "No data.",
) -> Markup:
    """Horizontal bars, one row per label, one segment per series value (stacked). Every text
    (title, labels, series, ``empty``: the description without bars) comes translated."""
    height = _ROW * max(len(bars), 1) + 30
    top = max((sum(values) for _, values in bars), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" id="{escape(chart_id)}"'
        f' viewBox="0 0 {_LABEL_W + _BAR_W + 60} {height}"'
        f' aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d">',
        f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-d">{escape(_describe(bars, series, empty))}</desc>',
    ]
    for row, (label, values) in enumerate(bars):
        y = row * _ROW
        parts.append(
            f'<text x="{_LABEL_W - 6}" y="{y + 17}" text-anchor="end" font-size="12"'
            f' fill="#222">{escape(label)}</text>'
        )
        x = float(_LABEL_W)
        for i, value in enumerate(values):
            width = _BAR_W * value / top
            if width > 0:
                colour = COLOURS[i % len(COLOURS)]
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + 4}" width="{width:.1f}" height="{_ROW - 8}"'
                    f' fill="{colour}"><title>{escape(series[i])}: {value}</title></rect>'
                )
            x += width
        parts.append(
            f'<text x="{x + 4:.1f}" y="{y + 17}" font-size="12" fill="#222">{sum(values)}</text>'
        )
    legend_y = _ROW * max(len(bars), 1) + 18
    for i, name in enumerate(series if len(series) > 1 else ()):
        lx = _LABEL_W + i * 110
        parts.append(
            f'<rect x="{lx}" y="{legend_y - 10}" width="10" height="10"'
            f' fill="{COLOURS[i % len(COLOURS)]}"/>'
            f'<text x="{lx + 14}" y="{legend_y}" font-size="12" fill="#222">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def _describe(bars: Sequence[Bar], series: Sequence[str], empty: str) -> str:
    if not bars:
        return empty
    return "; ".join(
        f"{label}: " + ", ".join(f"{s} {v}" for s, v in zip(series, values, strict=False))
        for label, values in bars
    )
