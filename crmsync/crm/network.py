"""Network failures that mean a wrong setting, not an outage.

A CRM host that cannot be resolved, or whose certificate is not for that host, points at
a wrong ``SALESFORCE_INSTANCE_URL`` / ``HUBSPOT_BASE_URL`` ("wrong instance", SPEC §8):
the call waits as for refused credentials, loudly, instead of failing after an hour of
retries. A DNS outage looks the same and is handled the same, which only delays calls.
"""

from __future__ import annotations

import socket
import ssl

from urllib3.exceptions import NameResolutionError


def wrong_host(exc: BaseException) -> str | None:
    """What is wrong with the host, when ``exc`` (or anything in its chain) says so."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NameResolutionError | socket.gaierror):
            return "its host name cannot be resolved"
        if isinstance(current, ssl.SSLCertVerificationError):
            return "its TLS certificate could not be verified"
        stack += [
            e
            for e in (current.__cause__, current.__context__, getattr(current, "reason", None))
            if isinstance(e, BaseException)
        ]
        stack += [a for a in current.args if isinstance(a, BaseException)]
    return None
