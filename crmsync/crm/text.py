"""Fitting text into a CRM field: cut at a line boundary, with a marker that says how much
was cut (``truncate``). Used by each CRM's profile (``crmsync.crm.base.Profile``)."""

from __future__ import annotations

import re

from markupsafe import escape


def truncate(body: str, limit: int, *, html: bool) -> str:
    """``body`` cut at a line boundary so that it and a marker fit in ``limit`` characters.

    In the HTML body every line is a whole element, so a cut there keeps the markup valid.
    A first line longer than the limit is cut inside.
    """
    if len(body) <= limit:
        return body
    lines = body.split("\n")
    kept: list[str] = []
    size = 0
    for line in lines:
        marker = _marker(len(lines) - len(kept), html)
        if size + len(line) + 1 + len(marker) > limit:
            break
        kept.append(line)
        size += len(line) + 1
    marker = _marker(len(lines) - len(kept), html)
    if not kept:  # one huge line: cut inside it, as plain text
        room = max(limit - len(marker) - 1, 0)
        first = re.sub(r"<[^>]*>", "", lines[0]) if html else lines[0]
        return (first[:room] + "\n" + marker)[:limit]
    return "\n".join(kept) + "\n" + marker


def _marker(cut_lines: int, html: bool) -> str:
    text = f"[… {cut_lines} more lines cut to fit the CRM limit]"
    return f"<p><i>{escape(text)}</i></p>" if html else text
