"""What the console's pages share: the :class:`Console` they read, the page renderer and the
login's redirect target. Kept apart from the package so the page modules import it without
importing the package that registers them (no import cycle)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Response, render_template, url_for
from redis import Redis

from crmsync.callindex import CallIndex
from crmsync.mapping.model import Mapping
from crmsync.mapping.preview import check_folder
from crmsync.settings import Settings
from crmsync.web.console.auth import Gate
from crmsync.web.state import WebState


@dataclass
class Console:
    """What every page reads: settings, Redis, the call index, the login gate, and the web
    process's own state (its ingest script and subscriptions, for a quarantine replay)."""

    settings: Settings
    redis: Redis
    index: CallIndex
    gate: Gate
    web: WebState
    _checked: tuple[tuple[tuple[str, int, int], ...], tuple[dict[str, Any], dict[Path, Mapping]]] | None = field(
        default=None, repr=False
    )

    def mapping_check(self) -> tuple[dict[str, Any], dict[Path, Mapping]]:
        """``check_folder(MAPPINGS_DIR)`` (what ``crmsync mappings check`` reports), parsed
        again only when a file there changed (its name, size or modification time)."""
        directory = self.settings.mappings_dir
        files = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
        stamp = tuple((f.name, s.st_size, s.st_mtime_ns) for f in files for s in [f.stat()])
        checked = self._checked
        if checked is None or checked[0] != stamp:
            checked = self._checked = (stamp, check_folder(directory))
        return checked[1]


def page(template: str, status: int = 200, **context: object) -> Response:
    """A rendered page (the templates are autoescaped: every value from a call is text)."""
    return Response(render_template(template, **context), status=status, mimetype="text/html")


def local_target(target: str | None) -> str:
    """``target`` when it is a console address on this host, else the overview (no open redirect)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/console/") and "\\" not in target:
            return target
    return url_for("console.overview")
