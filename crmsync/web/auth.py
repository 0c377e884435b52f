"""Bearer-token checks for the webhook (SPEC §4), in constant time, with rotation."""

from __future__ import annotations

import hmac
from collections.abc import Sequence


class AuthProblem(Exception):
    """Why a request was refused; the message is safe to return and log (no token)."""


def check_bearer(header: str | None, tokens: Sequence[str]) -> None:
    """Raise ``AuthProblem`` unless ``header`` is ``Bearer <one of tokens>``.

    Every accepted token is compared (``hmac.compare_digest``), so the time taken does
    not tell which token, or how much of one, matched.
    """
    if not header or not header.strip():
        raise AuthProblem('The Authorization header is missing: send "Authorization: Bearer <token>".')
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer":
        raise AuthProblem('The Authorization header must use the Bearer scheme: "Authorization: Bearer <token>".')
    if not credentials:
        raise AuthProblem('The Authorization header has no token after "Bearer".')
    first, _, rest = credentials.partition(" ")
    if first.lower() == "bearer" and rest.strip():
        raise AuthProblem(
            'The token starts with "Bearer" twice: in Hamsa set authKey to "Bearer" and authSecret to the token alone.'
        )
    given = credentials.encode()
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given, token.encode())
    if not matched:
        raise AuthProblem("The bearer token is not accepted.")
