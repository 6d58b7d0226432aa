"""A line chart of measured values (e.g. a meter's credit in kWh) as server-rendered SVG.

`charts.line_chart` plots percentages on a fixed 0-100 axis; a meter's credit has no
fixed top, so this one scales to the data: 0 to the largest value, rounded up to a
"nice" number, and labels only every few points so the axis stays readable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from operator_data.api.charts import HEIGHT, PAD_BOTTOM, PAD_LEFT, PAD_TOP, WIDTH


def nice_top(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^n that is >= value (1 for nothing to show)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= value:
            return step * power
    return 10.0 * power  # pragma: no cover - the loop always returns


def _label(number: float) -> str:
    return f"{number:g}"


def value_chart(
    labels: Sequence[str], values: Sequence[float | None], title: str, unit: str
) -> Markup:
    """Points left to right (oldest first); None leaves a gap in the line."""
    if len(labels) != len(values):
        raise ValueError("labels and values differ in length")
    top = nice_top(max((v for v in values if v is not None), default=0.0))
    plot_w = WIDTH - PAD_LEFT - 8
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    y0 = HEIGHT - PAD_BOTTOM
    step = plot_w / max(len(values), 1)
    every = max(1, math.ceil(len(values) / 8))
    parts = [
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{y0}" class="axis"/>',
        f'<line x1="{PAD_LEFT}" y1="{y0}" x2="{WIDTH - 8}" y2="{y0}" class="axis"/>',
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + 10}" class="tick" text-anchor="end">'
        f"{escape(_label(top))} {escape(unit)}</text>",
        f'<text x="{PAD_LEFT - 6}" y="{y0}" class="tick" text-anchor="end">0</text>',
    ]
    segments: list[list[str]] = [[]]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = PAD_LEFT + i * step + step / 2
        if i % every == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{y0 + 14}" class="tick" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
        if value is None:
            segments.append([])
            continue
        y = y0 - plot_h * value / top
        segments[-1].append(f"{x:.1f},{y:.1f}")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" class="dot">'
            f"<title>{escape(label)}: {escape(_label(value))} {escape(unit)}</title></circle>"
        )
    for points in segments:
        if len(points) > 1:
            parts.append(f'<polyline points="{" ".join(points)}" class="line"/>')
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f"{''.join(parts)}</svg>"
    )
