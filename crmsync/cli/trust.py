"""``crmsync history`` (the field-write audit), ``crmsync rollback`` and ``crmsync forget``."""

from __future__ import annotations

import json
from typing import Any

import click

from crmsync.cli.helpers import settings_and_redis


@click.command()
@click.option("--record", "record_id", help="A CRM record id: every write crmsync made on it.")
@click.option("--call", "call_id", help="A call id: every write that call made.")
@click.option("--json", "as_json", is_flag=True, help="One JSON list, one object per write.")
def history(record_id: str | None, call_id: str | None, as_json: bool) -> None:
    """The audit of field writes (and rollbacks) on a CRM record or by a call."""
    from crmsync.audit import Audit

    if (record_id is None) == (call_id is None):
        raise click.ClickException("name exactly one of --record ID or --call ID")
    settings, redis = settings_and_redis()
    audit = Audit(redis, settings.audit_ttl)
    if call_id is not None:
        entries = audit.for_call(call_id)
    else:
        entries = audit.for_record(settings.require_crm(), str(record_id))
    rows = [row for entry in entries for row in entry.rows()]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False, default=str))
        return
    if not rows:
        what = f"call {call_id}" if call_id else f"record {record_id}"
        days = settings.audit_ttl // 86400
        click.echo(f"no writes by crmsync are recorded for {what} (the audit keeps {days} days)")
        return
    print_rows(rows)


def print_rows(rows: list[dict[str, Any]]) -> None:
    """One line per write, never cut: ``at  call  object id  field: old -> new  (mapping hash)``."""
    for row in rows:
        where = f"{row['at']}  {row['call_id']}  {row['crm']} {row['object']} {row['record_id']}"
        source = f"({row['mapping']} {row['mapping_hash']})".replace(" )", ")")
        if row["kind"] == "write":
            what = f"{row['field']}: {_show(row['old'])} -> {_show(row['new'])}"
        elif row["kind"] == "rollback":
            what = f"{row['field']}: rolled back {_show(row['old'])} -> {_show(row['new'])}"
        elif row["kind"] == "rollback left":
            what = f"{row['field']}: left by a rollback, changed in the CRM since (now {_show(row['new'])})"
        elif row["kind"] == "rollback deleted":
            what = "deleted by a rollback"
        else:
            what = f"{row['kind']} by crmsync"
        click.echo(f"{where}  {what}  {source}")


def _show(value: Any) -> str:
    return "(empty)" if value is None or value == "" else str(value)


@click.command()
@click.argument("call_ids", nargs=-1)
@click.option("--since", help="Every call that wrote since this time, ISO 8601 (e.g. 2026-11-01T10:00:00Z).")
@click.option("--mapping", "mapping_name", help="With --since: only the writes of this mapping file (a name).")
@click.option("--activities", is_flag=True, help="Also delete the activities and follow-ups the calls created.")
@click.option("--dry-run", is_flag=True, help="Read and show the plan; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def rollback(
    call_ids: tuple[str, ...],
    since: str | None,
    mapping_name: str | None,
    activities: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Put back the old values of the fields calls wrote, where the CRM still holds crmsync's value."""
    from crmsync.audit import Audit
    from crmsync.crm.factory import build_connector
    from crmsync.errors import SettingsError, SyncError
    from crmsync.rollback import rollback as run

    if bool(call_ids) == bool(since):
        raise click.ClickException("name call ids, or --since TIME (with --mapping FILE to narrow it)")
    if mapping_name and not since:
        raise click.ClickException("--mapping goes with --since")
    settings, redis = settings_and_redis()
    audit = Audit(redis, settings.audit_ttl)
    ids = list(call_ids) or audit.calls_since(_epoch(str(since)), _file_name(mapping_name))
    try:
        connector = build_connector(settings, redis)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        report = run(audit, connector, ids, activities=activities, dry_run=dry_run)
    except SyncError as exc:
        raise click.ClickException(
            f"the CRM refused the rollback: {exc}; run it again once fixed (what is done stays done)"
        ) from None
    finally:
        connector.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str))
        return
    print_report(report)


def print_report(report: Any) -> None:
    verb = {
        "restore": "would restore" if report.dry_run else "restored",
        "done": "already restored",
        "left": "left: changed in the CRM since",
        "gone": "left: the record is gone",
    }
    for call in report.calls:
        click.echo(call.call_id)
        for step in call.fields:
            click.echo(
                f"  {step.object} {step.record_id} {step.field}: {verb[step.action]} "
                f"({_show(step.written)} -> {_show(step.old)}"
                + (f"; now {_show(step.current)})" if step.action == "left" else ")")
            )
        for obj, record_id, action in call.activities:
            done = {"delete": "would delete" if report.dry_run else "deleted", "gone": "already deleted"}[action]
            click.echo(f"  {obj} {record_id}: {done}")
    for call_id in report.unknown:
        click.echo(f"{call_id}: no writes recorded in the audit", err=True)
    prefix = "dry run, nothing changed: " if report.dry_run else ""
    click.echo(
        f"{prefix}{report.total('restore')} fields {'to restore' if report.dry_run else 'restored'}, "
        f"{report.total('left')} left (changed since), {report.deleted} activities "
        f"{'to delete' if report.dry_run else 'deleted'}"
    )


def _epoch(text: str) -> float:
    from crmsync.hamsa.backfill import BadPeriod, parse_when

    try:
        return parse_when(text, "--since").timestamp()
    except BadPeriod as exc:
        raise click.ClickException(str(exc)) from None


def _file_name(name: str | None) -> str | None:
    from pathlib import Path

    return Path(name).name if name else None


@click.command()
@click.option("--phone", "number", help="A phone number, typed any way (national formats read in DEFAULT_REGION).")
@click.option("--call", "call_id", help="One call id.")
def forget(number: str | None, call_id: str | None) -> None:
    """Erase everything crmsync keeps about a person (their number) or a call."""
    from crmsync.forget import forget_calls, forget_phone

    if (number is None) == (call_id is None):
        raise click.ClickException("name exactly one of --phone NUMBER or --call ID")
    settings, redis = settings_and_redis()
    if number is not None:
        try:
            removed = forget_phone(redis, number, settings.default_region)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    else:
        removed = forget_calls(redis, [str(call_id)])
    for gone in removed.calls:
        click.echo(f"call {gone}: events, raw bodies, sync record, receipts, audit, ledger and index entries erased")
    if removed.jobs:
        click.echo(f"{removed.jobs} RQ jobs and their results erased")
    for qid in removed.quarantined:
        click.echo(f"quarantined body {qid} erased (it held the number)")
    click.echo(f"{len(removed.calls)} calls forgotten, {len(removed.keys)} Redis keys removed.")
    click.echo(
        "crmsync keeps nothing more about them. The CRM's own records (the person, the call activities) "
        "are the CRM's to delete: crmsync did not touch them."
    )
