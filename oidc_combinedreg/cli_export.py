"""``combinedreg export`` / ``combinedreg import``: move registered methods, user state and the audit
log from one store to another (SQLite to PostgreSQL, docs/storage.md), as JSON lines.

Only what lasts is copied: methods (in use and reported), per-user state and audit events.
Sessions, challenges and counters are ephemeral: users sign in again after the move. Secrets are
copied as they are stored (encrypted with ``[secrets]`` keys, or hashed), so both configs must
have the same encryption keys. An import goes into an empty store only, in one transaction where
the store has them (SQLite, PostgreSQL): a failure leaves the target empty.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from typing import IO, Any

import click

from .cli_support import load_or_exit
from .clock import SystemClock
from .exceptions import ConfigError, StoreUnavailable
from .methods.kinds import MethodKind
from .store.base import AuditEvent, MethodRecord, Store, UserState

__all__ = ["export_command", "import_command"]

FORMAT = "combinedreg-export"
VERSION = 1
_ALL = 2**31 - 1


def _open(config_file: str) -> Store:
    from .store.factory import open_store

    config = load_or_exit(config_file)
    try:
        return open_store(config.storage, clock=SystemClock())
    except (ConfigError, StoreUnavailable) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


def _method(record: MethodRecord) -> dict[str, Any]:
    r = record
    return {"type": "method", "id": r.id, "user_id": r.user_id, "kind": str(r.kind),
            "label": r.label, "created_at": r.created_at, "data": dict(r.data),
            "secret": base64.b64encode(r.secret).decode(), "counter": r.counter,
            "last_used_at": r.last_used_at, "lookup": r.lookup,
            "reported_at": r.reported_at}  # fmt: skip


def _state(s: UserState) -> dict[str, Any]:
    return {"type": "user_state", "user_id": s.user_id, "default_method_id": s.default_method_id,
            "skips_used": s.skips_used, "snoozed_until": s.snoozed_until,
            "confirmed_at": s.confirmed_at, "reregister": s.reregister,
            "extra": dict(s.extra)}  # fmt: skip


def _audit(e: AuditEvent) -> dict[str, Any]:
    return {"type": "audit", "at": e.at, "event": e.event, "user_id": e.user_id,
            "outcome": e.outcome, "ip": e.ip, "correlation_id": e.correlation_id,
            "detail": dict(e.detail)}  # fmt: skip


def export_lines(store: Store) -> Iterator[dict[str, Any]]:
    yield {"format": FORMAT, "version": VERSION}
    for user_id in store.list_user_ids():
        for record in [*store.list_methods(user_id), *store.list_reported_methods(user_id)]:
            yield _method(record)
        yield _state(store.get_user_state(user_id))
    yield from (_audit(event) for event in reversed(store.list_audit(limit=_ALL)))


def import_lines(store: Store, lines: IO[str]) -> dict[str, int]:
    """Into an empty store, in one transaction; returns how many of each were imported."""
    if store.list_user_ids() or store.list_audit(limit=1):
        raise click.ClickException("the target store is not empty: import into a new one")
    header = json.loads(lines.readline() or "{}")
    if header != {"format": FORMAT, "version": VERSION}:
        raise click.ClickException(f"line 1: expected a {FORMAT} version {VERSION} header")
    counts = {"method": 0, "user_state": 0, "audit": 0}
    number = 1
    with store.transaction():
        try:
            for text in lines:
                number += 1
                item = json.loads(text)
                kind = item.pop("type")
                _import_one(store, kind, item)
                counts[kind] += 1
        except Exception as exc:  # any failure: StoreUnavailable rolls the transaction back
            raise StoreUnavailable(f"line {number}: {type(exc).__name__}: {exc}") from exc
    return counts


def _import_one(store: Store, kind: str, item: dict[str, Any]) -> None:
    if kind == "method":
        reported_at = item.pop("reported_at")
        item["secret"] = base64.b64decode(item["secret"])
        record = MethodRecord(**{**item, "kind": MethodKind(item["kind"])})
        store.add_method(record, limit=_ALL)
        if reported_at is not None:  # suspended again, as it was ("This wasn't me")
            state = store.get_user_state(record.user_id)
            store.report_methods(state, [record.id], at=reported_at)
    elif kind == "user_state":
        store.put_user_state(UserState(**item))
    elif kind == "audit":
        store.append_audit(AuditEvent(**item))
    else:
        raise ValueError(f"unknown type {kind!r}")


@click.command("export")
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False))
@click.option("--output", "-o", type=click.File("w"), default="-", help="default: stdout")
def export_command(config_file: str, output: IO[str]) -> None:
    """Write the store's methods, user state and audit log as JSON lines (for `import`)."""
    store = _open(config_file)
    try:
        for item in export_lines(store):
            output.write(json.dumps(item, sort_keys=True) + "\n")
    except StoreUnavailable as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        store.close()


@click.command("import")
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False))
@click.argument("source", type=click.File("r"))
def import_command(config_file: str, source: IO[str]) -> None:
    """Load an `export` into an empty store (same [secrets] keys), all or nothing."""
    store = _open(config_file)
    try:
        counts = import_lines(store, source)
    except StoreUnavailable as exc:
        click.echo(f"error: nothing imported: {exc}", err=True)
        sys.exit(1)
    finally:
        store.close()
    click.echo(
        f"imported {counts['method']} method(s), {counts['user_state']} user state(s), "
        f"{counts['audit']} audit event(s)"
    )
