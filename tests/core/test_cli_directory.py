"""``combinedreg ... --directory module:attr``: the CLI sees the host's Directory (users, names,
groups) and refuses users it does not know; ``--json`` for what scripts call."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from oidc_combinedreg import load_config
from oidc_combinedreg.cli import main
from oidc_combinedreg.clock import SystemClock
from oidc_combinedreg.crypto import generate_key
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.base import MethodRecord
from oidc_combinedreg.store.sqlite import SqliteStore

HOST_DIRECTORY = """
from oidc_combinedreg import DirectoryUser, PerUserMfa

USERS = {
    "alice": DirectoryUser(id="alice", display_name="Alice A.", groups=frozenset({"staff"})),
    "carol": DirectoryUser(
        id="carol",
        display_name="Carol C.",
        email="carol@example.test",
        groups=frozenset({"contractors"}),
    ),
}


class HostDirectory:
    def __init__(self, listing=True):
        if listing:
            self.user_ids = lambda: sorted(USERS)

    def get_user(self, user_id):
        return USERS.get(user_id)

    def set_password(self, user_id, new_password):
        raise NotImplementedError

    def set_per_user_mfa(self, user_id, state: PerUserMfa):
        raise NotImplementedError


directory = HostDirectory()
unlisted = HostDirectory(listing=False)


def make():
    return HostDirectory()


class NotADirectory:
    def get_user(self, user_id):
        return None


half = NotADirectory()
"""

CA = """
[[conditional_access]]
name = "Contractors require MFA"
state = "on"
[conditional_access.assignments]
include_groups = ["contractors"]
[conditional_access.target]
applications = ["all"]
[conditional_access.grant]
require = ["mfa"]
"""


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with the host's directory module (the current folder, as for ``flask --app``)
    and a config whose store knows alice (a TOTP) and a user the directory does not know."""
    (tmp_path / "hostdir.py").write_text(HOST_DIRECTORY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "hostdir", raising=False)
    config = tmp_path / "combinedreg.toml"
    config.write_text(
        f"""
[general]
environment = "development"
[web]
secure_cookies = false
[secrets]
encryption_keys = ["{generate_key()}"]
[storage.sqlite]
path = "reg.sqlite3"
"""
        + CA
    )
    store = SqliteStore(load_config(config).storage.sqlite_path, clock=SystemClock())
    try:
        for user in ("alice", "gone"):
            record = MethodRecord(
                id=f"{user}-totp", user_id=user, kind=MethodKind.TOTP, label="", created_at=1.0
            )
            store.add_method(record, limit=5)
    finally:
        store.close()
    return config


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _tap_events(config: Path) -> list[dict[str, object]]:
    out = invoke("report", "audit", "--config", str(config), "--format", "json", "--event", "tap.")
    assert out.exit_code == 0, out.output
    events: list[dict[str, object]] = json.loads(out.stdout)
    return events


def test_tap_issue_refuses_a_user_the_directory_does_not_know(host: Path) -> None:
    result = invoke(
        "tap", "issue", "--config", str(host), "--user", "nosuchuser",
        "--directory", "hostdir:directory",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "the directory knows no user 'nosuchuser'" in result.stderr
    assert "Temporary Access Pass" not in result.stdout
    assert _tap_events(host) == []  # nothing issued, nothing audited


def test_tap_issue_for_a_known_user_as_json(host: Path) -> None:
    result = invoke(
        "tap", "issue", "--config", str(host), "--user", "carol", "--json",
        "--directory", "hostdir:directory",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["user_id"] == "carol" and answer["one_time"] is True
    assert len(answer["code"]) >= 16 and answer["expires_at"].endswith("Z")
    assert [e["event"] for e in _tap_events(host)] == ["tap.issued"]
    revoked = invoke(
        "tap", "revoke", "--config", str(host), "--user", "carol", "--json",
        "--directory", "hostdir:directory",
    )  # fmt: skip
    assert json.loads(revoked.stdout) == {"user_id": "carol", "revoked": True}


def test_the_directory_comes_from_the_environment_too(
    host: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMBINEDREG_DIRECTORY", "hostdir:make")  # a factory, called once
    result = invoke("tap", "issue", "--config", str(host), "--user", "nosuchuser")
    assert result.exit_code == 2
    assert "knows no user 'nosuchuser'" in result.stderr


def test_without_a_directory_tap_issue_warns_that_the_user_was_not_checked(host: Path) -> None:
    result = invoke("tap", "issue", "--config", str(host), "--user", "nosuchuser")
    assert result.exit_code == 0
    assert "'nosuchuser' was not checked against the host's directory" in result.stderr


def test_registration_report_lists_the_directory_users_with_names(host: Path) -> None:
    result = invoke(
        "report", "registration", "--config", str(host), "--format", "json",
        "--directory", "hostdir:directory",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {r["user_id"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"alice", "gone", "carol"}  # carol: in the directory, no methods yet
    assert (rows["alice"]["display_name"], rows["alice"]["in_directory"]) == ("Alice A.", True)
    assert (rows["carol"]["display_name"], rows["carol"]["methods"]) == ("Carol C.", [])
    assert rows["gone"]["in_directory"] is False  # the store's user the directory lost
    # A Directory without user_ids() still gives names; the list is the store's.
    result = invoke(
        "report", "registration", "--config", str(host), "--format", "json",
        "--directory", "hostdir:unlisted",
    )  # fmt: skip
    assert [r["user_id"] for r in json.loads(result.stdout)] == ["alice", "gone"]


def test_report_for_one_unknown_user_is_refused(host: Path) -> None:
    result = invoke(
        "report", "registration", "--config", str(host), "--user", "nosuchuser",
        "--directory", "hostdir:directory",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "knows no user 'nosuchuser'" in result.stderr


def test_what_if_reads_the_groups_from_the_directory(host: Path) -> None:
    args = ["what-if", "--config", str(host), "--ip", "192.0.2.1", "--app", "portal", "--json"]
    result = invoke(*args, "--user", "carol", "--directory", "hostdir:directory")
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert decision["groups"] == ["contractors"]
    assert decision["missing"] == [["mfa"]]
    unknown = invoke(*args, "--user", "nosuchuser", "--directory", "hostdir:directory")
    assert unknown.exit_code == 2 and "knows no user 'nosuchuser'" in unknown.stderr
    both = invoke(*args, "--user", "carol", "--directory", "hostdir:directory", "--groups", "x")
    assert both.exit_code == 2 and "--groups or --directory" in both.stderr


def test_unlock_refuses_a_user_the_directory_does_not_know(host: Path) -> None:
    args = ["unlock", "--config", str(host), "--directory", "hostdir:directory", "--json"]
    result = invoke(*args, "--user", "nosuchuser")
    assert result.exit_code == 2 and "the directory knows no user" in result.stderr
    result = invoke(*args, "--user", "carol", "--status")
    assert result.exit_code == 0, result.output
    state = json.loads(result.stdout)
    assert (state["user_id"], state["locked"], state["unlocked"]) == ("carol", False, False)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hostdir", "expected MODULE:ATTR, got 'hostdir'"),
        ("nosuchmodule:directory", "cannot import 'nosuchmodule'"),
        ("hostdir:nothing", "module 'hostdir' has no attribute 'nothing'"),
        (
            "hostdir:half",
            "hostdir:half is not a Directory: it has no set_password, set_per_user_mfa",
        ),
    ],
)
def test_a_bad_directory_is_a_usage_error_saying_why(host: Path, spec: str, message: str) -> None:
    result = invoke("tap", "issue", "--config", str(host), "--user", "alice", "--directory", spec)
    assert result.exit_code == 2
    assert message in result.stderr
    assert _tap_events(host) == []


def test_check_config_as_json(host: Path, tmp_path: Path) -> None:
    result = invoke("check-config", str(host), "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["ok"] is True
    assert {p["severity"] for p in answer["problems"]} <= {"warning"}
    bad = tmp_path / "bad.toml"
    bad.write_text(host.read_text() + "[throttle]\nwindow = 1\n")
    result = invoke("check-config", str(bad), "--json")
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    assert answer["ok"] is False
    assert [p["path"] for p in answer["problems"] if p["severity"] == "error"] == [
        "throttle.window"
    ]


def test_admin_token_and_flush_notifications_as_json(host: Path) -> None:
    from oidc_combinedreg.admin.auth import hash_token

    token = json.loads(invoke("admin-token", "--name", "ops", "--json").stdout)
    assert token["name"] == "ops" and token["user"] is None
    assert token["hash"] == hash_token(token["token"])
    flushed = invoke("flush-notifications", "--config", str(host), "--json")
    assert flushed.exit_code == 0, flushed.output
    assert json.loads(flushed.stdout) == {"sent": 0, "pending": 0}


def test_the_example_idps_directory_attribute(
    host: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/admin.md's example: ``--directory example_idp.directory:cli_directory``."""
    monkeypatch.setenv("EXAMPLE_IDP_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    args = ["--config", str(host), "--directory", "example_idp.directory:cli_directory"]
    refused = invoke("tap", "issue", *args, "--user", "nosuchuser")
    assert refused.exit_code == 2 and "knows no user 'nosuchuser'" in refused.stderr
    issued = invoke("tap", "issue", *args, "--user", "frank", "--json")
    assert issued.exit_code == 0, issued.output
    rows = json.loads(invoke("report", "registration", *args, "--format", "json").stdout)
    names = {r["user_id"]: r["display_name"] for r in rows}
    assert {"alice", "frank", "breakglass"} <= set(names)
    assert names["frank"] != "frank"  # the directory's display name


def test_flush_notifications_writes_to_the_directorys_address_too(host: Path) -> None:
    """carol has no email method: only the Directory knows her address (the server writes to
    it; without the Directory the CLI finds no address and skips the notice, audited
    ``notify.skipped``)."""
    from oidc_combinedreg.service import SecurityInfo
    from oidc_combinedreg.store.factory import open_store

    host.write_text(host.read_text() + '[delivery.email]\nprovider = "console"\n')
    config = load_config(host)
    store = open_store(config.storage, clock=SystemClock())
    try:
        info = SecurityInfo(config=config, store=store, clock=SystemClock())
        for event in info.notifier.prepare_password_reset("carol", ip="192.0.2.1").events:
            store.append_audit(event)  # queued with the change; not sent yet
    finally:
        store.close()
    args = ["flush-notifications", "--config", str(host), "--json"]
    sent = invoke(*args, "--directory", "hostdir:directory")
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout) == {"sent": 1, "pending": 1}
    assert json.loads(invoke(*args).stdout) == {"sent": 0, "pending": 0}


def test_import_tokens_refuses_a_user_the_directory_does_not_know_as_json(
    host: Path, tmp_path: Path
) -> None:
    seed = base64.b32encode(b"12345678901234567890").decode()
    csv_file = tmp_path / "tokens.csv"
    csv_file.write_text(
        "upn,serial number,secret key,time interval,manufacturer,model\n"
        f"carol,1001,{seed},30,C,M\nnosuchuser,1002,{seed},30,C,M\n"
    )
    args = ["import-tokens", "--config", str(host), "--csv", str(csv_file), "--json"]
    refused = invoke(*args, "--directory", "hostdir:directory")
    assert refused.exit_code == 1, refused.output
    answer = json.loads(refused.stdout)
    assert (answer["ok"], answer["imported"]) == (False, [])
    assert [p["message"] for p in answer["problems"]] == ["unknown user 'nosuchuser'"]
    csv_file.write_text(csv_file.read_text().rsplit("nosuchuser", 1)[0])
    imported = invoke(*args, "--directory", "hostdir:directory")
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout) == {"ok": True, "imported": ["1001"], "problems": []}
