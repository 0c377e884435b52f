"""Signature checks of the other platforms against known vectors.

The fixed vectors below were computed with ``openssl dgst -hmac`` (not Python, and not
crmsync); the rest are computed here with ``hmac``/``hashlib`` from each platform's
documented formula (``reference/voice-providers.md``), never by calling crmsync's code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from crmsync.provider_settings import ProviderSettings, VapiHmac
from crmsync.providers.registry import PLATFORMS
from crmsync.providers.signing import SignatureRefused

RETELL_KEY, RETELL_OLD = "key_retell_test_1", "key_retell_rotated_0"
RETELL_BODY = b'{"event":"call_analyzed","call":{"call_id":"c1"}}'
RETELL_MS = 1772442000000
RETELL_VECTOR = "ddc890ba7b6c036eedbef928263a7aac7437332e97bb26184d4b06f79e1c4a40"

EL_SECRET = "wsec_elevenlabs_test_1"
EL_BODY = b'{"type":"post_call_transcription","data":{"conversation_id":"conv_1"}}'
EL_TS = 1772449500
EL_VECTOR = "ce504b87d21745c3978635a8c1c25dbe01ea530e265c512b8052326eacc5f924"

BLAND_SECRET = "bland_test_secret_1"
BLAND_BODY = b'{"call_id":"b1","call_length":1.5}'
BLAND_VECTOR = "909147ff90ea41a40e4470b2108f9f22062a7a84da6ae70ea959a62da045f0a9"

VAPI_SECRET = "vapi_hmac_test_1"
VAPI_BODY = b'{"message":{"type":"end-of-call-report","call":{"id":"v1"}}}'
VAPI_TS = 1772445709
VAPI_HEX = "18524f0f067214be8986b202bc526ce7bde0818c1d79cb62a0ee59c5fd9192ad"
VAPI_B64 = "GFJPDwZyFL6JhrICvFJs573ggYwdectioO5Zxf2Rkq0="
VAPI_SHA512_BODY_ONLY = (
    "cf81362e3e818b71d4f2ee16e99c180a318325412276b37043741ab60869ee1fc2e5f85ff84fb5fad1010fd1e4b9c08c7de162d6ba22f96bb3"
    "cbe31cda5e1a8c"
)


def sign(secret: str, message: bytes, algorithm=hashlib.sha256) -> str:
    return hmac.new(secret.encode(), message, algorithm).hexdigest()


def refused(platform: str, headers: dict, body: bytes, settings: ProviderSettings, now: float) -> str:
    with pytest.raises(SignatureRefused) as info:
        PLATFORMS[platform].verify(headers, body, settings, now)
    message = str(info.value)
    for secret in settings.all_secrets():
        assert secret not in message
    return message


# -- Retell ------------------------------------------------------------------------------
RETELL = ProviderSettings(retell_api_keys=(RETELL_OLD, RETELL_KEY))
RETELL_NOW = RETELL_MS / 1000 + 30


def test_retell_known_vector_is_accepted_with_either_rotation_key():
    assert sign(RETELL_KEY, RETELL_BODY + str(RETELL_MS).encode()) == RETELL_VECTOR
    header = {"X-Retell-Signature": f"v={RETELL_MS},d={RETELL_VECTOR}"}
    PLATFORMS["retell"].verify(header, RETELL_BODY, RETELL, RETELL_NOW)
    PLATFORMS["retell"].verify(header, RETELL_BODY, ProviderSettings(retell_api_keys=(RETELL_KEY,)), RETELL_NOW)
    old = {"x-retell-signature": f"v={RETELL_MS},d={sign(RETELL_OLD, RETELL_BODY + str(RETELL_MS).encode())}"}
    PLATFORMS["retell"].verify(old, RETELL_BODY, RETELL, RETELL_NOW)


def test_retell_signature_at_the_edge_of_five_minutes():
    header = {"x-retell-signature": f"v={RETELL_MS},d={RETELL_VECTOR}"}
    PLATFORMS["retell"].verify(header, RETELL_BODY, RETELL, RETELL_MS / 1000 + 300)
    message = refused("retell", header, RETELL_BODY, RETELL, RETELL_MS / 1000 + 301)
    assert "more than 5 minutes" in message
    assert "5 minutes" in refused("retell", header, RETELL_BODY, RETELL, RETELL_MS / 1000 - 301)


@pytest.mark.parametrize(
    "header, body, reason",
    [
        (f"v={RETELL_MS},d={sign('wrong-key', RETELL_BODY + str(RETELL_MS).encode())}", RETELL_BODY, "does not match"),
        (f"v={RETELL_MS},d={RETELL_VECTOR}", RETELL_BODY.replace(b"c1", b"c2"), "does not match"),
        (f"v={RETELL_MS + 1},d={RETELL_VECTOR}", RETELL_BODY, "does not match"),  # the timestamp is signed too
        (f"v={RETELL_MS},d={sign(RETELL_KEY, RETELL_BODY)}", RETELL_BODY, "does not match"),  # timestamp left out
        (RETELL_VECTOR, RETELL_BODY, "expected form"),
        (f"sha256={RETELL_VECTOR}", RETELL_BODY, "expected form"),
        (f"v={RETELL_MS // 1000}s,d={RETELL_VECTOR}", RETELL_BODY, "expected form"),
        (f"v={RETELL_MS},d={base64.b64encode(bytes.fromhex(RETELL_VECTOR)).decode()}", RETELL_BODY, "expected form"),
        ("", RETELL_BODY, "missing"),
    ],
    ids=[
        "wrong-key",
        "tampered-body",
        "other-timestamp",
        "unsigned-timestamp",
        "bare-hex",
        "sha256-prefix",
        "not-digits",
        "base64",
        "empty",
    ],
)
def test_retell_refusals(header, body, reason):
    message = refused("retell", {"x-retell-signature": header}, body, RETELL, RETELL_NOW)
    assert reason in message
    assert "x-retell-signature" in message


def test_retell_without_the_header_names_it():
    assert "x-retell-signature header is missing" in refused("retell", {}, RETELL_BODY, RETELL, RETELL_NOW)


def test_a_hamsa_bearer_token_opens_no_platform():
    bearer = {"Authorization": f"Bearer {RETELL_KEY}"}
    for name, settings in [("retell", RETELL), ("elevenlabs", ELEVEN), ("bland", BLAND)]:
        assert "missing" in refused(name, bearer, b"{}", settings, RETELL_NOW)


# -- ElevenLabs --------------------------------------------------------------------------
ELEVEN = ProviderSettings(elevenlabs_secrets=("wsec_rotated_old", EL_SECRET))


def test_elevenlabs_known_vector_and_thirty_minute_window():
    assert sign(EL_SECRET, f"{EL_TS}.".encode() + EL_BODY) == EL_VECTOR
    header = {"ElevenLabs-Signature": f"t={EL_TS},v0={EL_VECTOR}"}
    PLATFORMS["elevenlabs"].verify(header, EL_BODY, ELEVEN, EL_TS + 1800)
    assert "30 minutes" in refused("elevenlabs", header, EL_BODY, ELEVEN, EL_TS + 1801)
    assert "30 minutes" in refused("elevenlabs", header, EL_BODY, ELEVEN, EL_TS - 1801)


@pytest.mark.parametrize(
    "header, body, reason",
    [
        (f"t={EL_TS},v0={sign('wsec_wrong', f'{EL_TS}.'.encode() + EL_BODY)}", EL_BODY, "does not match"),
        (f"t={EL_TS},v0={EL_VECTOR}", EL_BODY + b" ", "does not match"),
        (f"t={EL_TS},v0={sign(EL_SECRET, f'{EL_TS}'.encode() + EL_BODY)}", EL_BODY, "does not match"),  # no "."
        (f"t={EL_TS},v1={EL_VECTOR}", EL_BODY, "expected form"),
        (f"v0={EL_VECTOR}", EL_BODY, "expected form"),
        (EL_VECTOR, EL_BODY, "expected form"),
        (f"t={EL_TS},v0=not-hex", EL_BODY, "expected form"),
        (f"t={EL_TS},v0={EL_VECTOR[:40]}", EL_BODY, "expected form"),
    ],
    ids=["wrong-secret", "tampered-body", "no-dot", "wrong-version", "no-timestamp", "bare-hex", "not-hex", "short"],
)
def test_elevenlabs_refusals(header, body, reason):
    message = refused("elevenlabs", {"elevenlabs-signature": header}, body, ELEVEN, EL_TS + 10)
    assert reason in message
    assert "ElevenLabs-Signature" in message


# -- Bland -------------------------------------------------------------------------------
BLAND = ProviderSettings(bland_secrets=(BLAND_SECRET, "bland_next_secret"))


def test_bland_known_vector_any_case():
    assert sign(BLAND_SECRET, BLAND_BODY) == BLAND_VECTOR
    PLATFORMS["bland"].verify({"X-Webhook-Signature": BLAND_VECTOR}, BLAND_BODY, BLAND, None)
    PLATFORMS["bland"].verify({"x-webhook-signature": BLAND_VECTOR.upper()}, BLAND_BODY, BLAND, None)
    second = sign("bland_next_secret", BLAND_BODY)
    PLATFORMS["bland"].verify({"x-webhook-signature": second}, BLAND_BODY, BLAND, None)


@pytest.mark.parametrize(
    "header, body, reason",
    [
        (sign("bland_wrong", BLAND_BODY), BLAND_BODY, "does not match"),
        (BLAND_VECTOR, BLAND_BODY.replace(b"1.5", b"9.5"), "does not match"),
        (f"sha256={BLAND_VECTOR}", BLAND_BODY, "expected form"),
        (base64.b64encode(bytes.fromhex(BLAND_VECTOR)).decode(), BLAND_BODY, "expected form"),
    ],
    ids=["wrong-secret", "tampered-body", "prefixed", "base64"],
)
def test_bland_refusals(header, body, reason):
    message = refused("bland", {"X-Webhook-Signature": header}, body, BLAND, None)
    assert reason in message
    assert "X-Webhook-Signature" in message


# -- Vapi --------------------------------------------------------------------------------
def vapi(auth: str = "hmac", **plan) -> ProviderSettings:
    return ProviderSettings(vapi_secrets=("vapi_rotated_old", VAPI_SECRET), vapi_auth=auth, vapi_hmac=VapiHmac(**plan))


def test_vapi_hmac_default_plan_known_vector():
    assert sign(VAPI_SECRET, f"{VAPI_TS}.".encode() + VAPI_BODY) == VAPI_HEX
    headers = {"x-signature": VAPI_HEX, "x-timestamp": str(VAPI_TS)}
    PLATFORMS["vapi"].verify(headers, VAPI_BODY, vapi(), VAPI_TS + 5)
    millis = {"x-signature": VAPI_HEX, "x-timestamp": str(VAPI_TS)}
    PLATFORMS["vapi"].verify(millis, VAPI_BODY, vapi(), VAPI_TS + 299)
    assert "5 minutes" in refused("vapi", headers, VAPI_BODY, vapi(), VAPI_TS + 301)
    PLATFORMS["vapi"].verify(headers, VAPI_BODY, vapi(tolerance=0), VAPI_TS + 86400)  # 0: no window


def test_vapi_hmac_millisecond_timestamps_are_read_as_such():
    stamp = str(VAPI_TS * 1000)
    headers = {"x-signature": sign(VAPI_SECRET, f"{stamp}.".encode() + VAPI_BODY), "x-timestamp": stamp}
    PLATFORMS["vapi"].verify(headers, VAPI_BODY, vapi(), VAPI_TS + 5)
    assert "5 minutes" in refused("vapi", headers, VAPI_BODY, vapi(), VAPI_TS + 400)


def test_vapi_hmac_base64_prefix_custom_headers():
    plan = {
        "encoding": "base64",
        "prefix": "sha256=",
        "signature_header": "X-Vapi-Signature",
        "timestamp_header": "X-Vapi-Timestamp",
    }
    headers = {"X-Vapi-Signature": f"sha256={VAPI_B64}", "X-Vapi-Timestamp": str(VAPI_TS)}
    PLATFORMS["vapi"].verify(headers, VAPI_BODY, vapi(**plan), VAPI_TS)
    assert "expected form" in refused(
        "vapi", {**headers, "X-Vapi-Signature": VAPI_B64}, VAPI_BODY, vapi(**plan), VAPI_TS
    )
    hex_instead = {**headers, "X-Vapi-Signature": f"sha256={VAPI_HEX}"}
    assert "expected form" in refused("vapi", hex_instead, VAPI_BODY, vapi(**plan), VAPI_TS)


def test_vapi_hmac_sha512_over_the_body_alone():
    plan = {"algorithm": "sha512", "payload_format": "{body}"}
    assert sign(VAPI_SECRET, VAPI_BODY, hashlib.sha512) == VAPI_SHA512_BODY_ONLY
    PLATFORMS["vapi"].verify({"x-signature": VAPI_SHA512_BODY_ONLY}, VAPI_BODY, vapi(**plan), VAPI_TS + 10**6)
    assert "expected form" in refused("vapi", {"x-signature": VAPI_HEX}, VAPI_BODY, vapi(**plan), VAPI_TS)  # sha256


def test_vapi_hmac_custom_payload_format_with_method():
    plan = {"payload_format": "{method}\n{timestamp}\n{body}"}
    signature = sign(VAPI_SECRET, f"POST\n{VAPI_TS}\n".encode() + VAPI_BODY)
    headers = {"x-signature": signature, "x-timestamp": str(VAPI_TS)}
    PLATFORMS["vapi"].verify(headers, VAPI_BODY, vapi(**plan), VAPI_TS)
    assert "does not match" in refused("vapi", headers, VAPI_BODY, vapi(), VAPI_TS)


@pytest.mark.parametrize(
    "headers, body, reason",
    [
        (
            {"x-signature": sign("vapi_wrong", f"{VAPI_TS}.".encode() + VAPI_BODY), "x-timestamp": str(VAPI_TS)},
            VAPI_BODY,
            "does not match",
        ),
        ({"x-signature": VAPI_HEX, "x-timestamp": str(VAPI_TS)}, VAPI_BODY.replace(b"v1", b"v2"), "does not match"),
        ({"x-signature": VAPI_HEX, "x-timestamp": str(VAPI_TS + 1)}, VAPI_BODY, "does not match"),
        ({"x-signature": VAPI_HEX}, VAPI_BODY, "x-timestamp header is missing"),
        ({"x-signature": VAPI_HEX, "x-timestamp": "yesterday"}, VAPI_BODY, "expected form"),
        ({"x-signature": VAPI_B64, "x-timestamp": str(VAPI_TS)}, VAPI_BODY, "expected form"),
        ({"x-vapi-secret": VAPI_SECRET}, VAPI_BODY, "x-signature header is missing"),
    ],
    ids=[
        "wrong-secret",
        "tampered-body",
        "other-timestamp",
        "no-timestamp",
        "timestamp-not-a-number",
        "base64",
        "legacy-header-in-hmac-mode",
    ],
)
def test_vapi_hmac_refusals(headers, body, reason):
    assert reason in refused("vapi", headers, body, vapi(), VAPI_TS + 1)


def test_vapi_legacy_secret_is_compared_verbatim():
    settings = vapi("secret")
    PLATFORMS["vapi"].verify({"X-Vapi-Secret": VAPI_SECRET}, VAPI_BODY, settings, None)
    PLATFORMS["vapi"].verify({"x-vapi-secret": "vapi_rotated_old"}, VAPI_BODY, settings, None)
    assert "not accepted" in refused("vapi", {"x-vapi-secret": VAPI_SECRET + "x"}, VAPI_BODY, settings, None)
    assert "not accepted" in refused("vapi", {"x-vapi-secret": VAPI_SECRET.upper()}, VAPI_BODY, settings, None)
    assert "missing" in refused("vapi", {"Authorization": f"Bearer {VAPI_SECRET}"}, VAPI_BODY, settings, None)


def test_vapi_bearer_credential():
    settings = vapi("bearer")
    PLATFORMS["vapi"].verify({"Authorization": f"Bearer {VAPI_SECRET}"}, VAPI_BODY, settings, None)
    assert "expected form" in refused("vapi", {"Authorization": VAPI_SECRET}, VAPI_BODY, settings, None)
    assert "not accepted" in refused("vapi", {"Authorization": "Bearer nope"}, VAPI_BODY, settings, None)
    custom = ProviderSettings(vapi_secrets=(VAPI_SECRET,), vapi_auth="bearer", vapi_bearer_header="X-Api-Key")
    PLATFORMS["vapi"].verify({"x-api-key": VAPI_SECRET}, VAPI_BODY, custom, None)
    PLATFORMS["vapi"].verify({"x-api-key": f"Bearer {VAPI_SECRET}"}, VAPI_BODY, custom, None)
    assert "missing" in refused("vapi", {"Authorization": f"Bearer {VAPI_SECRET}"}, VAPI_BODY, custom, None)
