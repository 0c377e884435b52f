"""The platforms the web process accepts besides Hamsa (SPEC §4, ``reference/voice-providers.md``).

Each platform module has the same two functions:

    verify(headers, raw, settings, now=None)   raises SignatureRefused; reads only the
                                               headers and the raw body bytes
    normalise(body, region, received_at=None)  the canonical event (``call.provider`` set);
                                               raises crmsync.events.InvalidEvent

``PLATFORMS`` maps each webhook path name (``/webhooks/<name>``) to its ``Platform``. A
platform whose secret setting is unset is off: its webhook answers 404.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from crmsync.canonical import CanonicalEvent
from crmsync.provider_settings import ProviderSettings
from crmsync.providers import bland, elevenlabs, retell, vapi

Verify = Callable[[Mapping[str, str], bytes, ProviderSettings, "float | None"], None]
Normalise = Callable[[dict[str, Any], str], CanonicalEvent]
REDACTED = b"[redacted]"


@dataclass(frozen=True)
class Platform:
    name: str  # the webhook path: /webhooks/<name>, and call.provider
    title: str  # as people write it
    verify: Verify
    normalise: Normalise

    def enabled(self, settings: ProviderSettings) -> bool:
        return bool(settings.secrets(self.name))


def _with_secrets(check: Callable[..., None], name: str) -> Verify:
    def verify(headers: Mapping[str, str], raw: bytes, settings: ProviderSettings, now: float | None = None) -> None:
        check(headers, raw, settings.secrets(name), now)

    return verify


PLATFORMS: dict[str, Platform] = {
    module.NAME: Platform(
        module.NAME,
        module.TITLE,
        vapi.verify if module is vapi else _with_secrets(module.verify, module.NAME),
        module.normalise,
    )
    for module in (retell, vapi, elevenlabs, bland)
}


def without_secrets(raw: bytes, settings: ProviderSettings) -> bytes:
    """``raw`` with every configured secret replaced, so none is ever kept in Redis.

    A Vapi report, for one, carries the assistant's configuration, which may hold its
    server secret. Applied to authenticated bodies before they are parsed or quarantined.
    """
    for secret in settings.all_secrets():
        token = secret.encode()
        if token in raw:
            raw = raw.replace(token, REDACTED)
    return raw
