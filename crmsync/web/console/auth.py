"""Who may use the console: one password, a signed session cookie, CSRF tokens, slowed guesses.

The cookie (``crmsync_console``, path ``/console``, ``HttpOnly``, ``SameSite=Lax``, ``Secure``
when the request came over https) holds a value signed with ``SECRET_KEY``: a CSRF token,
and after a login a session id. Redis keeps only a digest of each live session id, for
``SESSION_TTL``; logging out deletes it, so a copied cookie dies with the session. Every
POST must carry the cookie's CSRF token in its ``csrf`` field, the login form's included.

After ``FREE_FAILURES`` wrong passwords from one address within ``FAIL_WINDOW``, each
further attempt has to wait (1 s, 2 s, 4 s … at most ``MAX_WAIT``): the login answers 429
with the seconds left, without looking at the password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from flask import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from redis import Redis

COOKIE = "crmsync_console"
SESSION_TTL = 8 * 3600  # seconds a login lasts
FAIL_WINDOW = 15 * 60  # seconds failures are counted over
FREE_FAILURES = 3  # wrong passwords before attempts are slowed
MAX_WAIT = 60  # seconds between attempts at most
SESSION_PREFIX = "crmsync:console:session:"
FAILURES_PREFIX = "crmsync:console:failures:"
WAIT_PREFIX = "crmsync:console:wait:"


@dataclass
class Visitor:
    """The console's view of one browser: its CSRF token and, once logged in, its session."""

    csrf: str
    session_id: str | None = None
    authenticated: bool = False
    changed: bool = False  # the cookie must be (re)sent


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Gate:
    """Reads and writes the console cookie and the session and failure records in Redis."""

    def __init__(self, redis: Redis, password: str, secret_key: str) -> None:
        self.redis = redis
        self._password = password.encode()
        self._signer = URLSafeTimedSerializer(secret_key, salt="crmsync.console.session")

    def visitor(self, request: Request) -> Visitor:
        """The visitor of ``request``; a missing, forged or expired cookie gives a new one."""
        raw = request.cookies.get(COOKIE)
        if raw:
            try:
                data = self._signer.loads(raw, max_age=SESSION_TTL)
            except BadSignature:
                data = None
            if isinstance(data, dict) and isinstance(data.get("csrf"), str):
                sid = data.get("sid") if isinstance(data.get("sid"), str) else None
                live = bool(sid) and bool(self.redis.exists(SESSION_PREFIX + _digest(sid or "")))
                return Visitor(csrf=data["csrf"], session_id=sid if live else None, authenticated=live)
        return Visitor(csrf=secrets.token_urlsafe(24), changed=True)

    def csrf_ok(self, visitor: Visitor, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(visitor.csrf.encode(), (given or "").encode())

    def password_ok(self, given: str) -> bool:
        return hmac.compare_digest(self._password, given.encode())

    def wait_left(self, source: str) -> int:
        """Seconds ``source`` must still wait before its next attempt (0: go ahead)."""
        return max(int(self.redis.ttl(WAIT_PREFIX + _digest(source))), 0)

    def failed(self, source: str) -> None:
        key = FAILURES_PREFIX + _digest(source)
        pipe = self.redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, FAIL_WINDOW)
        count = int(pipe.execute()[0])
        if count > FREE_FAILURES:
            wait = min(2 ** (count - FREE_FAILURES - 1), MAX_WAIT)
            self.redis.set(WAIT_PREFIX + _digest(source), "1", ex=wait)

    def log_in(self, visitor: Visitor, source: str) -> Visitor:
        """A new session (and a new CSRF token: nothing from before the login survives it)."""
        sid = secrets.token_urlsafe(32)
        pipe = self.redis.pipeline()
        pipe.set(SESSION_PREFIX + _digest(sid), "1", ex=SESSION_TTL)
        pipe.delete(FAILURES_PREFIX + _digest(source), WAIT_PREFIX + _digest(source))
        pipe.execute()
        return Visitor(csrf=secrets.token_urlsafe(24), session_id=sid, authenticated=True, changed=True)

    def log_out(self, visitor: Visitor) -> Visitor:
        if visitor.session_id:
            self.redis.delete(SESSION_PREFIX + _digest(visitor.session_id))
        return Visitor(csrf=secrets.token_urlsafe(24), changed=True)

    def set_cookie(self, response: Response, visitor: Visitor, secure: bool) -> None:
        value = self._signer.dumps({"csrf": visitor.csrf, "sid": visitor.session_id})
        response.set_cookie(
            COOKIE, value, max_age=SESSION_TTL, path="/console", httponly=True, samesite="Lax", secure=secure
        )
