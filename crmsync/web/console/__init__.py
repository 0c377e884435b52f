"""The admin console at ``/console`` (SPEC §4): server-rendered pages over what the CLI reads.

On only while ``CONSOLE_PASSWORD`` is set (``SECRET_KEY`` is then required); otherwise the
blueprint is not registered and every ``/console`` address is a 404. Everything here runs
only for ``/console`` requests: the webhook path does not pass through it.

Every page wants a session (else it redirects to the login), every POST its CSRF token,
every answer says ``Cache-Control: no-store``. Behind the platform's router a request that
came over plain http is redirected to https before anything is read.
"""

from __future__ import annotations

import re

from flask import Blueprint, Flask, Response, g, redirect, request, url_for

from crmsync.callindex import CallIndex
from crmsync.web.console import calls, login, manage, mappings
from crmsync.web.console.auth import Gate
from crmsync.web.console.pages import Console, local_target, page
from crmsync.web.state import WebState

OPEN_ENDPOINTS = ("console.login", "console.static")
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def register_console(app: Flask, web: WebState) -> None:
    """Mount the console (``create_app`` does it while ``CONSOLE_PASSWORD`` is set)."""
    settings = web.settings
    console = Console(
        settings,
        web.redis,
        CallIndex(web.redis),
        Gate(web.redis, settings.console_password or "", settings.secret_key or ""),
        web,
    )
    blueprint = Blueprint(
        "console", __name__, url_prefix="/console", template_folder="templates", static_folder="static"
    )
    _guard(blueprint, console)
    blueprint.add_app_template_filter(_show_value, "show_value")
    blueprint.add_app_template_filter(_activity_text, "activity_text")
    for module in (login, calls, manage, mappings):
        module.add_routes(blueprint, console)
    app.register_blueprint(blueprint)


def _guard(blueprint: Blueprint, console: Console) -> None:
    @blueprint.before_request
    def check() -> Response | None:
        if request.headers.get("X-Forwarded-Proto", "").lower() == "http":
            return redirect(request.url.replace("http://", "https://", 1), 308)  # type: ignore[return-value]
        g.visitor = console.gate.visitor(request)
        if request.endpoint not in OPEN_ENDPOINTS and not g.visitor.authenticated:
            return redirect(url_for("console.login", next=request.full_path.rstrip("?")))  # type: ignore[return-value]
        if request.method == "POST" and not console.gate.csrf_ok(g.visitor, request.form.get("csrf")):
            return page("refused.html", 403, title="Refused")
        return None

    @blueprint.context_processor
    def shared() -> dict[str, object]:
        visitor = g.get("visitor")
        return {
            "csrf": visitor.csrf if visitor else "",
            "crm": console.settings.crm,
            "signed_in": bool(visitor and visitor.authenticated),
        }

    @blueprint.after_request
    def headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        visitor = g.get("visitor")
        if visitor is not None and visitor.changed:
            secure = request.is_secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
            console.gate.set_cookie(response, visitor, secure)
        return response


def _show_value(value: object, type: str) -> str:
    """A planned value as ``crmsync mappings preview`` shows it."""
    from crmsync.mapping.preview import show_value

    return show_value(value, type, limit=80)


def _activity_text(body: str) -> str:
    """The activity body as the preview shows it: HubSpot's HTML as its text lines."""
    return re.sub(r"<[^>]+>", "", body.replace("</li>", "\n").replace("</p>", "</p>\n")) if "<" in body else body


__all__ = ["Console", "local_target", "page", "register_console"]
