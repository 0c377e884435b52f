"""Redaction (``redact:``, ``activity.transcript``): the rules on English and Arabic text, the
mapping loader's errors, and a call synced by the real job to a sandbox HubSpot."""

from __future__ import annotations

import json
import shutil

import pytest

from crmsync import jobs
from crmsync.errors import MappingError
from crmsync.events import dedupe_key, normalise
from crmsync.ingest import Ingest
from crmsync.mapping import load_mapping
from crmsync.mapping.redact import RULES, Redactor, builtin, custom, iban_valid, luhn
from tests.conftest import ROOT, installed
from tests.hs_helpers import hubspot_env

ALL = builtin(["card_number", "iban", "email"])
CARD = "4111 1111 1111 1111"  # passes Luhn
NUMBER = "+966501234567"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"My card is {CARD}, thanks", "My card is [card number], thanks"),
        ("card 4111-1111-1111-1111.", "card [card number]."),
        ("order 4111 1111 1111 1112 shipped", "order 4111 1111 1111 1112 shipped"),  # fails Luhn: left
        ("write to sara.k+crm@example.co.uk today", "write to [e-mail] today"),
        ("IBAN GB82 WEST 1234 5698 7654 32 please", "IBAN [IBAN] please"),
        ("IBAN GB82 WEST 1234 5698 7654 33 please", "IBAN GB82 WEST 1234 5698 7654 33 please"),  # bad check
        ("SA0380000000608010167519 OK", "[IBAN] OK"),
        ("call me on +966501234567 or 0501234567", "call me on +966501234567 or 0501234567"),
        (f"رقم البطاقة {CARD} شكرا", "رقم البطاقة [card number] شكرا"),
        ("رقم البطاقة ٤١١١ ١١١١ ١١١١ ١١١١ شكرا", "رقم البطاقة [card number] شكرا"),  # Arabic-Indic digits
        ("بريدي نورة@مثال.السعودية أو noura@example.com", "بريدي [e-mail] أو [e-mail]"),
        ("الآيبان SA0380000000608010167519 من فضلك", "الآيبان [IBAN] من فضلك"),
        ("رقمي +966501234567", "رقمي +966501234567"),
    ],
)
def test_builtin_rules(text, expected):
    assert ALL(text) == expected


def test_checks_and_custom_rules():
    assert luhn("4111111111111111") and not luhn("4111111111111112") and luhn("٤١١١١١١١١١١١١١١١")
    assert iban_valid("DE89 3704 0044 0532 0130 00") and not iban_valid("DE89 3704 0044 0532 0130 01")
    employee = Redactor((custom(r"EMP-[0-9]{6}", "[employee id]"), RULES["email"]))
    assert employee("EMP-123456 wrote a@b.io") == "[employee id] wrote [e-mail]"
    assert Redactor()("a@b.io") == "a@b.io" and not Redactor()


def mapping_file(tmp_path, extra: str, activity: str = "") -> str:
    text = (ROOT / "mappings" / "hubspot.yaml").read_text()
    if activity:
        text = text.replace(
            "activity:                       # the call logged on the contact's timeline\n",
            f"activity:                       # the call logged on the contact's timeline\n{activity}\n",
        )
    path = tmp_path / "hubspot.yaml"
    path.write_text(text + extra)
    return str(path)


def test_loader_reads_redact_and_transcript(tmp_path):
    path = mapping_file(
        tmp_path, '\nredact: [card_number, email, {pattern: "EMP-[0-9]{6}"}]\n', "  transcript: redacted"
    )
    mapping = load_mapping(path)
    assert mapping.activity.transcript == "redacted"
    assert mapping.redact.names() == ["card_number", "email", "pattern EMP-[0-9]{6}"]


def test_loader_errors_name_file_line_and_what_is_valid(tmp_path):
    path = mapping_file(
        tmp_path, '\nredact: [card_numbers, {pattern: "([a-z"}, {pattern: x, with: y}]\n', "  transcript: partial"
    )
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    text = "\n".join(caught.value.problems)
    lines = (tmp_path / "hubspot.yaml").read_text().splitlines()
    redact_line = next(i for i, line in enumerate(lines, 1) if line.startswith("redact:"))
    transcript_line = next(i for i, line in enumerate(lines, 1) if "transcript: partial" in line)
    assert f'{path}:{transcript_line}: activity.transcript: "partial" is not one of full, redacted, none' in text
    assert f'{path}:{redact_line}: redact[0]: "card_numbers" is not one of card_number, iban, email' in text
    assert f"{path}:{redact_line}: redact[1].pattern: is no regular expression" in text
    assert 'redact[2].with: unknown key "with"; valid keys: pattern, replacement' in text


# -- through the job, into the sandbox CRM ----------------------------------------------------
def mapped(hubspot, redis_url, tmp_path, extra: str, activity: str = "") -> dict[str, str]:
    """The environment of a crmsync on ``hubspot`` whose one mapping file has ``extra`` and ``activity``."""
    folder = tmp_path / "mappings"
    folder.mkdir()
    shutil.move(mapping_file(tmp_path, extra, activity), folder / "hubspot.yaml")
    return hubspot_env(hubspot, redis_url, folder)


def sync(redis, fixture_path, *turns: dict, **outcome) -> str:
    body = json.loads((fixture_path / "call_ended_documented.json").read_text())
    body["data"]["data"]["transcription"] += list(turns)
    body["data"]["data"]["outcomeResult"].update(outcome)
    event = normalise(body, "SA")
    Ingest(redis, 3600).store(event, dedupe_key(event), enqueue=False)
    assert jobs.sync_call(event["call_id"], "call.ended") == "synced"
    return event["call_id"]


TURNS = (
    {"User": f"My card is {CARD} and my e-mail is noura@example.com"},
    {"User": "بطاقتي ٤١١١ ١١١١ ١١١١ ١١١١ وبريدي noura.a@example.sa"},
)


def test_a_redacted_transcript_reaches_the_crm_without_card_or_email(hubspot, redis, redis_url, tmp_path, fixture_path):
    env = mapped(hubspot, redis_url, tmp_path, "\nredact: [card_number, iban, email]\n", "  transcript: redacted")
    with installed(env, redis):
        contact = hubspot.seed_contact({"phone": NUMBER, "lastname": "Alharbi"})
        call_id = sync(redis, fixture_path, *TURNS, summary=f"Paid with {CARD}; confirm to noura@example.com")
    [call] = hubspot.calls_for(call_id)
    body = call["hs_call_body"]
    assert "two-bedroom apartments" in body  # the rest of the transcript is there
    assert "4111" not in body and "٤١١١" not in body and "@example" not in body
    assert body.count("[card number]") >= 2 and "[e-mail]" in body and "بطاقتي" in body
    # the matching number is intact: the call is on the seeded contact, from the caller's number
    assert call["_associations"] == [contact] and call["hs_call_from_number"] == NUMBER
    summary = hubspot.contact(contact)["last_call_summary"]  # a mapped text field, redacted too
    assert summary == "Paid with [card number]; confirm to [e-mail]"


def test_transcript_none_sends_no_transcript_and_full_is_the_default(hubspot, redis, redis_url, tmp_path, fixture_path):
    with installed(mapped(hubspot, redis_url, tmp_path, "", "  transcript: none"), redis):
        hubspot.seed_contact({"phone": NUMBER})
        call_id = sync(redis, fixture_path, *TURNS)
    [call] = hubspot.calls_for(call_id)
    assert "<h3>Transcript</h3>" not in call["hs_call_body"] and "What budget" not in call["hs_call_body"]
    assert "Outcome" in call["hs_call_body"]
    assert load_mapping(ROOT / "mappings" / "hubspot.yaml").activity.transcript == "full"


def test_plan_redacts_title_properties_and_only_the_appended_line():
    from crmsync.mapping.engine import plan
    from crmsync.mapping.rules import ActivitySpec, FieldRule
    from crmsync.mapping.templates import compile_template, environment

    env = environment()
    spec = ActivitySpec(
        title=compile_template("Call about {{ outcome.note }}", env),
        properties={"hs_call_source": compile_template("{{ outcome.note }}", env)},
    )
    rules = [FieldRule(to="notes", source="outcome.note", write="append")]
    context = {
        "call": {"id": "c1", "customer_number": NUMBER},
        "outcome": {"note": "mail me: a.b@example.com"},
        "transcript": [],
        "transcript_text": "",
        "tools": [],
    }
    mapping = load_mapping(ROOT / "mappings" / "hubspot.yaml")
    done = plan(rules, spec, mapping.profile, context, "contact", {"notes": "old line with x@y.io"}, "SA", ALL)
    assert done.activity.title == "Call about mail me: [e-mail]"
    assert done.activity.properties == {"hs_call_source": "mail me: [e-mail]"}
    assert done.updates["notes"] == "old line with x@y.io\nmail me: [e-mail]"  # the CRM's own text untouched
    assert done.activity.from_number == NUMBER
