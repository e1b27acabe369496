"""The move from SQLite to PostgreSQL (issue 21, docs/storage.md): ``combinedreg export`` of a
SQLite store and ``combinedreg import`` into an empty PostgreSQL one carry every method (reported
ones still reported), every user state and the whole audit log, unchanged; an import is all or
nothing and only into an empty store."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from click.testing import CliRunner
from postgres_servers import PostgresServer
from store_helpers import T0, event, method

from oidc_combinedreg.cli import main
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.crypto import generate_key
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store import SqliteStore, Store, UserState
from oidc_combinedreg.store.postgres import PostgresStore


def _configs(tmp_path: Path, dsn: str) -> tuple[Path, Path]:
    keys = f'[secrets]\nencryption_keys = ["{generate_key()}"]\n'
    sqlite = tmp_path / "sqlite.toml"
    sqlite.write_text(keys + f'[storage]\n[storage.sqlite]\npath = "{tmp_path / "old.db"}"\n')
    postgres = tmp_path / "postgres.toml"
    postgres.write_text(
        keys + f'[storage]\nbackend = "postgres"\n[storage.postgres]\ndsn = "{dsn}"\n'
    )
    # production (the default environment): the schema comes from `combinedreg migrate`
    migrated = CliRunner().invoke(main, ["migrate", "--config", str(postgres)])
    assert migrated.exit_code == 0, migrated.output
    return sqlite, postgres


def _snapshot(store: Store) -> object:
    users = store.list_user_ids()
    return (
        users,
        [store.list_methods(u) for u in users],
        [store.list_reported_methods(u) for u in users],
        [store.get_user_state(u) for u in users],
        store.list_audit(limit=1000),
    )


def test_sqlite_to_postgres_round_trip(postgres_server: PostgresServer, tmp_path: Path) -> None:
    dsn = postgres_server.create_database("moved")
    sqlite_config, postgres_config = _configs(tmp_path, dsn)
    old = SqliteStore(str(tmp_path / "old.db"), clock=FrozenClock(T0))
    key = method("alice", MethodKind.WEBAUTHN, lookup="cred-1", label="YubiKey",
                 data={"credential_id": "cred-1"}, secret=b"\x00\xffpub", counter=7)  # fmt: skip
    app = method("alice", secret=b"sealed-seed", counter=56_666_666, last_used_at=T0 + 5)
    stolen = method("bob", MethodKind.EMAIL, data={"email": "b@example.com"})
    for record in (key, app, stolen):
        old.add_method(record, limit=5, events=[event(user_id=record.user_id)])
    old.report_methods(UserState(user_id="bob"), [stolen.id], at=T0 + 60, events=[event("x")])
    old.put_user_state(
        UserState(user_id="alice", default_method_id=key.id, skips_used=2, reregister=True,
                  extra={"flag": [1, "two"]}),
        events=[event("state.changed", detail={"why": "test \u0000 nul"})],
    )  # fmt: skip
    before = _snapshot(old)
    old.close()

    runner = CliRunner()
    exported = runner.invoke(main, ["export", "--config", str(sqlite_config)])
    assert exported.exit_code == 0, exported.output
    dump = tmp_path / "export.jsonl"
    dump.write_text(exported.output)

    done = runner.invoke(main, ["import", "--config", str(postgres_config), str(dump)])
    assert done.exit_code == 0, done.output
    assert "imported 3 method(s), 2 user state(s), 5 audit event(s)" in done.output
    new = PostgresStore(dsn, clock=FrozenClock(T0))
    try:
        assert _snapshot(new) == before
        assert new.find_method_by_lookup("cred-1") == key
    finally:
        new.close()

    again = runner.invoke(main, ["import", "--config", str(postgres_config), str(dump)])
    assert again.exit_code != 0 and "not empty" in again.output


def test_a_failed_import_leaves_the_target_empty(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    dsn = postgres_server.create_database("half")
    _, postgres_config = _configs(tmp_path, dsn)
    good = method("alice")
    lines = [
        '{"format": "combinedreg-export", "version": 1}',
        '{"type": "audit", "at": 1.0, "event": "e", "user_id": null, "outcome": "info",'
        ' "ip": null, "correlation_id": null, "detail": {}}',
        json.dumps(
            {
                "type": "method",
                "id": good.id,
                "user_id": "alice",
                "kind": "totp",
                "label": "",
                "created_at": 1.0,
                "data": {},
                "secret": "",
                "counter": 0,
                "last_used_at": None,
                "lookup": None,
                "reported_at": None,
            }
        ),  # fmt: skip
        '{"type": "method", "id": "x", "user_id": "alice", "kind": "no-such-kind"}',
    ]
    dump = tmp_path / "broken.jsonl"
    dump.write_text("\n".join(lines) + "\n")
    done = CliRunner().invoke(main, ["import", "--config", str(postgres_config), str(dump)])
    assert done.exit_code == 1
    assert "nothing imported: line 4" in done.output
    with psycopg.connect(dsn, autocommit=True) as conn:
        counts = conn.execute("SELECT (SELECT count(*) FROM methods), (SELECT count(*) FROM audit)")
        assert counts.fetchone() == (0, 0)
