"""``combinedreg report | tap | unlock | admin-token`` over a seeded SQLite store, in table, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from oidc_combinedreg import load_config
from oidc_combinedreg.admin.auth import hash_token
from oidc_combinedreg.cli import main
from oidc_combinedreg.clock import SystemClock
from oidc_combinedreg.crypto import generate_key
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.base import AuditEvent, MethodRecord
from oidc_combinedreg.store.sqlite import SqliteStore

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "combinedreg.toml"
    path.write_text(
        f"""
[general]
environment = "development"
[web]
secure_cookies = false
[secrets]
encryption_keys = ["{generate_key()}"]
[storage.sqlite]
path = "reg.sqlite3"
[policies.sspr]
enabled_for = "all"
"""
    )
    store = SqliteStore(load_config(path).storage.sqlite_path, clock=SystemClock())
    try:
        for user, kind in (
            ("alice", MethodKind.TOTP),
            ("alice", MethodKind.EMAIL),
            ("bob", MethodKind.EMAIL),
        ):
            record = MethodRecord(
                id=f"{user}-{kind.value}", user_id=user, kind=kind, label="", created_at=T0
            )
            store.add_method(record, limit=5)
        for at, event, user, outcome, reason in (
            (T0, "method.added", "alice", "success", None),
            (T0 + 60, "method.add_failed", "bob", "failure", "code"),
            (T0 + 120, "mfa.failed", "alice", "failure", "code"),
            (T0 + 86400, "method.added", "bob", "success", None),
        ):
            detail = {"kind": "totp"} if reason is None else {"reason": reason}
            store.append_audit(
                AuditEvent(
                    at=at, event=event, user_id=user, outcome=outcome, ip="192.0.2.1", detail=detail
                )
            )
    finally:
        store.close()
    return path


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_registration_report_as_table(config_file: Path) -> None:
    lines = run("report", "registration", "--config", str(config_file)).splitlines()
    assert lines[0].split() == [
        "user_id",
        "display_name",
        "in_directory",
        "mfa_capable",
        "sspr_registered",
        "sspr_capable",
        "default_method",
        "methods",
        "locked",
    ]
    assert lines[2].split() == [
        "alice",
        "alice",
        "no",
        "yes",
        "yes",
        "yes",
        "totp",
        "totp",
        "email",
        "no",
    ]
    assert lines[3].split() == ["bob", "bob", "no", "no", "yes", "yes", "email", "no"]


def test_registration_report_as_csv_and_json(config_file: Path) -> None:
    out = run("report", "registration", "--config", str(config_file), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["user_id"], r["mfa_capable"], r["methods"]) for r in rows] == [
        ("alice", "yes", "totp email"),
        ("bob", "no", "email"),
    ]
    data = json.loads(
        run(
            "report",
            "registration",
            "--config",
            str(config_file),
            "--format",
            "json",
            "--user",
            "bob",
        )
    )
    assert data == [
        {
            "user_id": "bob",
            "display_name": "bob",
            "in_directory": False,
            "mfa_capable": False,
            "sspr_registered": True,
            "sspr_capable": True,
            "default_method": None,
            "methods": ["email"],
            "locked": False,
        }
    ]


def test_usage_report_for_a_period(config_file: Path) -> None:
    args = (
        "report",
        "usage",
        "--config",
        str(config_file),
        "--since",
        "2023-11-14",
        "--until",
        "2023-11-15",
    )
    data = json.loads(run(*args, "--format", "json"))
    assert data["activity"]["registration"] == {
        "started": 0,
        "succeeded": 1,
        "failed": 1,
        "failed_by_reason": {"code": 1},
    }
    assert data["methods"]["email"] == {"methods": 2, "users": 2, "added": 0}
    rows = list(csv.DictReader(io.StringIO(run(*args, "--format", "csv"))))
    assert {"section": "mfa", "name": "failed", "measure": "code", "value": "1"} in rows
    table = [line.split() for line in run(*args).splitlines()]
    assert table[0] == ["section", "name", "measure", "value"]
    assert ["registration", "succeeded", "count", "1"] in table


def test_audit_report_filters(config_file: Path) -> None:
    base = ("report", "audit", "--config", str(config_file), "--format", "json")
    assert [e["event"] for e in json.loads(run(*base, "--user", "bob"))] == [
        "method.added",
        "method.add_failed",
    ]
    assert [e["user_id"] for e in json.loads(run(*base, "--event", "mfa."))] == ["alice"]
    late = json.loads(run(*base, "--since", "2023-11-15T00:00:00Z"))
    assert [(e["at"], e["ip"]) for e in late] == [("2023-11-15T22:13:20Z", "192.0.2.1")]
    table = run("report", "audit", "--config", str(config_file), "--until", "2023-11-14T22:14:00Z")
    assert table.splitlines()[2].split()[:5] == [
        "2023-11-14T22:13:20Z",
        "method.added",
        "alice",
        "192.0.2.1",
        "success",
    ]


def test_a_bad_time_is_a_usage_error(config_file: Path) -> None:
    result = CliRunner().invoke(
        main, ["report", "usage", "--config", str(config_file), "--since", "last week"]
    )
    assert result.exit_code == 2 and "ISO 8601" in result.output


def test_tap_issue_prints_the_pass_once_and_stores_only_a_hash(config_file: Path) -> None:
    out = run(
        "tap",
        "issue",
        "--config",
        str(config_file),
        "--user",
        "carol",
        "--hours",
        "2",
        "--multi-use",
    )
    code = re.search(r"carol: ([A-Z0-9-]{19})", out)
    assert code is not None and "any number of sign-ins" in out
    store = SqliteStore(load_config(config_file).storage.sqlite_path, clock=SystemClock())
    try:
        stored = store.peek_challenge("tap:carol")
        assert stored is not None and stored["one_time"] is False
        assert stored["expires_at"] - stored["created_at"] == 7200
        assert code.group(1) not in json.dumps(stored)
        assert store.list_audit(event_prefix="tap.issued")[0].detail["actor"].startswith("cli")
    finally:
        store.close()
    assert "revoked" in run("tap", "revoke", "--config", str(config_file), "--user", "carol")


def test_unlock_shows_and_clears_a_locked_account_audited(config_file: Path) -> None:
    """SECURITY.md case 57: every durable lock has an audited admin unlock, here from a shell."""
    path = load_config(config_file).storage.sqlite_path
    store = SqliteStore(path, clock=SystemClock())
    try:
        for _ in range(100):  # [throttle] max_consecutive_failures: wrong MFA codes in a row
            store.incr("fail:user:alice:consecutive", ttl=None)
        for _ in range(3):  # carol: wrong codes while registering a first method, none stored
            store.incr("fail:user:carol:consecutive", ttl=None)
    finally:
        store.close()
    status = run("unlock", "--config", str(config_file), "--user", "alice", "--status")
    assert status.startswith("alice: locked (100 of 100 consecutive failures")
    table = run("report", "registration", "--config", str(config_file)).splitlines()
    assert table[2].split()[-1] == "yes" and table[3].split()[-1] == "no"
    out = run("unlock", "--config", str(config_file), "--user", "alice")
    assert out.startswith("alice: unlocked; it was locked")
    assert run("unlock", "--config", str(config_file), "--user", "alice", "--status").startswith(
        "alice: not locked (0 of 100"
    )
    store = SqliteStore(path, clock=SystemClock())
    try:
        event = store.list_audit(event_prefix="admin.unlocked")[0]
    finally:
        store.close()
    assert event.user_id == "alice" and str(event.detail["actor"]).startswith("cli")
    assert event.detail["was_locked"] is True and event.detail["consecutive_failures"] == 100
    carol = run("unlock", "--config", str(config_file), "--user", "carol")
    assert carol.startswith("carol: unlocked; it was not locked (3 of 100")
    result = CliRunner().invoke(main, ["unlock", "--config", str(config_file), "--user", "nobody"])
    assert result.exit_code == 2 and "no user 'nobody'" in result.output


def test_admin_token_prints_a_token_and_its_config_lines() -> None:
    out = run("admin-token", "--name", "ops", "--user", "admin")
    token = re.search(r"not stored\): (\S+)", out)
    assert token is not None
    assert f'hash = "{hash_token(token.group(1))}"' in out
    assert '[[admin.tokens]]\nname = "ops"' in out and 'user = "admin"' in out
