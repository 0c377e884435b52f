"""The other platforms' settings (SPEC §3): several secrets each, Vapi's modes, and one
line naming the variable for every bad or contradictory value."""

from __future__ import annotations

import pytest

from crmsync.errors import SettingsError
from crmsync.provider_settings import ProviderSettings, VapiHmac


def load(**env: str) -> ProviderSettings:
    return ProviderSettings.from_env(lambda name: (env.get(name) or "").strip() or None)


def hmac_env(**env: str) -> dict[str, str]:
    """Vapi's HMAC mode with a secret, and ``env``."""
    return {"VAPI_WEBHOOK_SECRET": "v", "VAPI_AUTH": "hmac", **env}


def test_nothing_set_turns_every_platform_off():
    settings = load()
    assert [settings.secrets(p) for p in ("retell", "vapi", "elevenlabs", "bland")] == [(), (), (), ()]
    assert settings.vapi_auth == "secret"
    assert settings.vapi_hmac == VapiHmac()


def test_secrets_are_comma_separated_for_rotation_and_never_shown():
    settings = load(
        RETELL_API_KEY=" key_a , key_b ,",
        ELEVENLABS_WEBHOOK_SECRET="wsec_1",
        BLAND_WEBHOOK_SECRET="b1,b2",
        VAPI_WEBHOOK_SECRET="v1",
    )
    assert settings.secrets("retell") == ("key_a", "key_b")
    assert settings.secrets("bland") == ("b1", "b2")
    assert settings.all_secrets() == ("key_a", "key_b", "v1", "wsec_1", "b1", "b2")
    assert not any(secret in repr(settings) for secret in settings.all_secrets())


def test_vapi_hmac_plan_from_its_settings():
    settings = load(
        VAPI_WEBHOOK_SECRET="v1",
        VAPI_AUTH="HMAC",
        VAPI_HMAC_ALGORITHM="sha512",
        VAPI_HMAC_SIGNATURE_HEADER="X-Sig",
        VAPI_HMAC_TIMESTAMP_HEADER="X-Time",
        VAPI_HMAC_PAYLOAD_FORMAT="{timestamp}:{body}",
        VAPI_HMAC_ENCODING="base64",
        VAPI_HMAC_PREFIX="sha512=",
        VAPI_HMAC_TOLERANCE="600",
    )
    assert settings.vapi_auth == "hmac"
    assert settings.vapi_hmac == VapiHmac("sha512", "X-Sig", "X-Time", "{timestamp}:{body}", "base64", "sha512=", 600)


@pytest.mark.parametrize(
    "env, variable, says",
    [
        ({"VAPI_AUTH": "oauth", "VAPI_WEBHOOK_SECRET": "v"}, "VAPI_AUTH", "secret, bearer or hmac"),
        ({"VAPI_AUTH": "hmac"}, "VAPI_WEBHOOK_SECRET", "is not set"),
        ({"VAPI_WEBHOOK_SECRET": "v", "VAPI_HMAC_ENCODING": "hex"}, "VAPI_HMAC_ENCODING", "VAPI_AUTH is not hmac"),
        ({"VAPI_WEBHOOK_SECRET": "v", "VAPI_BEARER_HEADER": "X-Key"}, "VAPI_BEARER_HEADER", "VAPI_AUTH is not bearer"),
        (hmac_env(VAPI_HMAC_ALGORITHM="md5"), "VAPI_HMAC_ALGORITHM", "sha256, sha512, sha1"),
        (hmac_env(VAPI_HMAC_ENCODING="base32"), "VAPI_HMAC_ENCODING", "hex or base64"),
        (hmac_env(VAPI_HMAC_PAYLOAD_FORMAT="{url}.{body}"), "VAPI_HMAC_PAYLOAD_FORMAT", "{url} is not supported"),
        (hmac_env(VAPI_HMAC_PAYLOAD_FORMAT="{timestamp}"), "VAPI_HMAC_PAYLOAD_FORMAT", "must contain {body}"),
        (hmac_env(VAPI_HMAC_TOLERANCE="5m"), "VAPI_HMAC_TOLERANCE", "whole number"),
        (hmac_env(VAPI_HMAC_TOLERANCE="-1"), "VAPI_HMAC_TOLERANCE", "0 (no check)"),
    ],
)
def test_bad_vapi_settings_name_the_variable(env, variable, says):
    with pytest.raises(SettingsError) as info:
        load(**env)
    assert str(info.value).startswith(variable)
    assert says in str(info.value)
    assert "\n" not in str(info.value)
