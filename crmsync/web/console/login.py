"""``/console/login`` and ``/console/logout``."""

from __future__ import annotations

from flask import Blueprint, Response, g, redirect, request, url_for

from crmsync.web.console.pages import Console, local_target, page
from crmsync.web.responses import source


def add_routes(blueprint: Blueprint, console: Console) -> None:
    gate = console.gate

    @blueprint.route("/login", methods=["GET", "POST"])
    def login() -> Response:
        target = local_target(request.values.get("next"))
        if request.method == "GET":
            if g.visitor.authenticated:
                return redirect(target)  # type: ignore[return-value]
            return page("login.html", title="Sign in", target=target)
        wait = gate.wait_left(source())
        if wait:
            return page(
                "login.html",
                429,
                title="Sign in",
                target=target,
                problem=f"Too many wrong passwords: wait {wait} seconds, then try again.",
            )
        if not gate.password_ok(request.form.get("password", "")):
            gate.failed(source())
            return page(
                "login.html",
                401,
                title="Sign in",
                target=target,
                problem="That is not the console password (CONSOLE_PASSWORD).",
            )
        g.visitor = gate.log_in(g.visitor, source())
        return redirect(target, 303)  # type: ignore[return-value]

    @blueprint.post("/logout")
    def logout() -> Response:
        g.visitor = gate.log_out(g.visitor)
        return redirect(url_for("console.login"), 303)  # type: ignore[return-value]
