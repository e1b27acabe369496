"""`combinedreg flush-notifications` sends what a crash left queued, once."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from oidc_combinedreg.cli import main
from oidc_combinedreg.clock import SystemClock
from oidc_combinedreg.config import load_config
from oidc_combinedreg.crypto import generate_key
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.service import SecurityInfo
from oidc_combinedreg.store.base import MethodRecord
from oidc_combinedreg.store.factory import open_store


def test_a_notice_queued_before_a_crash_is_sent_by_the_cli_once(tmp_path: Path) -> None:
    config_file = tmp_path / "c.toml"
    config_file.write_text(
        f"""
[general]
environment = "development"
[web]
secure_cookies = false
[secrets]
encryption_keys = ["{generate_key()}"]
[storage.sqlite]
path = "{tmp_path / "s.db"}"
[delivery.email]
provider = "console"
"""
    )
    config = load_config(config_file)
    store = open_store(config.storage, clock=SystemClock())
    info = SecurityInfo(config=config, store=store, clock=SystemClock())
    store.add_method(
        MethodRecord(
            id="e1",
            user_id="alice",
            kind=MethodKind.EMAIL,
            label="",
            created_at=0,
            data={"email": "alice@example.com"},
        ),
        limit=1,
    )
    notice = info.notifier.prepare_password_reset("alice", ip="192.0.2.1")
    for event in notice.events:  # committed with the change; the process died before sending
        store.append_audit(event)
    store.close()

    runner = CliRunner()
    first = runner.invoke(main, ["flush-notifications", "--config", str(config_file)])
    assert first.exit_code == 0, first.output
    assert first.output.strip() == "1 of 1 queued notification(s) sent"
    again = runner.invoke(main, ["flush-notifications", "--config", str(config_file)])
    assert again.output.strip() == "0 of 0 queued notification(s) sent"


def test_a_bad_config_is_reported_with_its_path(tmp_path: Path) -> None:
    config_file = tmp_path / "c.toml"
    config_file.write_text("[web]\nprefix = 1\n")
    result = CliRunner().invoke(main, ["flush-notifications", "--config", str(config_file)])
    assert result.exit_code == 1
    assert "error: web.prefix: expected a string, got an integer" in result.output
