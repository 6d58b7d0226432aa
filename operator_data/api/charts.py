"""Small server-rendered SVG charts (no JavaScript, nothing fetched from anywhere)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH = 640
HEIGHT = 220
PAD_LEFT = 44
PAD_BOTTOM = 36
PAD_TOP = 12


def _frame(body: str, title: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{body}</svg>'
    )


def _axes(top_label: str) -> str:
    y0 = HEIGHT - PAD_BOTTOM
    return (
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{y0}" class="axis"/>'
        f'<line x1="{PAD_LEFT}" y1="{y0}" x2="{WIDTH - 8}" y2="{y0}" class="axis"/>'
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + 10}" class="tick" text-anchor="end">'
        f"{escape(top_label)}</text>"
        f'<text x="{PAD_LEFT - 6}" y="{y0}" class="tick" text-anchor="end">0</text>'
    )


def bar_chart(labels: Sequence[str], values: Sequence[int], title: str) -> Markup:
    top = max([*values, 1])
    plot_w = WIDTH - PAD_LEFT - 8
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(len(values), 1)
    parts = [_axes(str(top))]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top
        x = PAD_LEFT + i * step + step * 0.15
        y = HEIGHT - PAD_BOTTOM - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
            f'class="bar"><title>{escape(label)}: {value}</title></rect>'
        )
        parts.append(
            f'<text x="{x + step * 0.35:.1f}" y="{HEIGHT - PAD_BOTTOM + 14}" class="tick" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    return _frame("".join(parts), title)


def line_chart(labels: Sequence[str], values: Sequence[float | None], title: str) -> Markup:
    """Percentages 0-100; None (no data that day) leaves a gap."""
    plot_w = WIDTH - PAD_LEFT - 8
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(len(values), 1)
    parts = [_axes("100%")]
    segment: list[str] = []
    segments: list[list[str]] = [segment]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = PAD_LEFT + i * step + step / 2
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - PAD_BOTTOM + 14}" class="tick" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
        if value is None:
            segment = []
            segments.append(segment)
            continue
        y = HEIGHT - PAD_BOTTOM - plot_h * value / 100.0
        segment.append(f"{x:.1f},{y:.1f}")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" class="dot">'
            f"<title>{escape(label)}: {value:.1f}%</title></circle>"
        )
    for points in segments:
        if len(points) > 1:
            parts.append(f'<polyline points="{" ".join(points)}" class="line"/>')
    return _frame("".join(parts), title)
