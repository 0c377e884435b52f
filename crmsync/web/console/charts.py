"""Charts drawn on the server as inline SVG: no script, no chart library, nothing fetched.

``stacked_bars(buckets, series)`` draws one bar per bucket, stacked by series, with the
bucket labels under the axis and a ``<title>`` on each bar part (the browser shows it on
hover; screen readers read it). Every text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 180  # pixels of the drawing area
LEFT, BOTTOM, TOP = 36, 22, 8  # margins for the axis labels

LABELS = {"queued": "queued (waiting)"}  # what a person calls a state, where the name alone says less
COLOURS = {"synced": "#2e7d32", "partial": "#f9a825", "skipped": "#8e24aa", "failed": "#c62828", "queued": "#1565c0"}


def stacked_bars(
    buckets: Sequence[tuple[str, dict[str, int]]], series: Sequence[str], title: str, label_every: int = 1
) -> Markup:
    """``buckets`` is ``[(label, {series: count})]`` oldest first."""
    peak = max([sum(counts.get(s, 0) for s in series) for _, counts in buckets] + [1])
    scale = (HEIGHT - BOTTOM - TOP) / peak
    step = (WIDTH - LEFT) / max(len(buckets), 1)
    bar = max(step * 0.7, 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    base = HEIGHT - BOTTOM
    for tick in (0, peak // 2, peak) if peak > 1 else (0, 1):
        y = base - tick * scale
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" class="axis" text-anchor="end">{tick}</text>'
        )
    for i, (label, counts) in enumerate(buckets):
        x = LEFT + i * step + (step - bar) / 2
        y = base
        for name in series:
            count = counts.get(name, 0)
            if not count:
                continue
            h = count * scale
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS.get(name, "#607d8b")}"><title>{escape(label)}: {count} '
                f"{escape(name)}</title></rect>"
            )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{HEIGHT - 6}" class="axis" text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(series: Sequence[str]) -> Markup:
    items = "".join(
        f'<span class="key"><svg width="10" height="10" aria-hidden="true"><rect width="10" '
        f'height="10" fill="{COLOURS.get(s, "#607d8b")}"/></svg> {escape(LABELS.get(s, s))}</span>'
        for s in series
    )
    return Markup(f'<p class="legend">{items}</p>')
