"""Hardware OATH tokens through the stack: admin import (function and CLI), MFA, activation, HOTP."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner
from webtest import Browser, code_from, location, notices

from oidc_combinedreg.cli import main
from oidc_combinedreg.crypto import generate_key
from oidc_combinedreg.exceptions import InvalidInput
from oidc_combinedreg.methods.hardware_oath import OathKind, OathParams, code_at
from oidc_combinedreg.store.base import MethodRecord

HEADER = "upn,serial number,secret key,time interval,manufacturer,model\n"
SECRET = bytes(range(20))
B32 = base64.b32encode(SECRET).decode()
DATA = Path(__file__).resolve().parents[1] / "core" / "data"
RFC_SECRET = b"12345678901234567890"


def tokens(browser: Browser, user: str = "alice") -> list:
    return [m for m in browser.reg.store.list_methods(user) if m.kind == "hardware_oath"]


def mfa_url(browser: Browser, user: str = "alice") -> str:
    browser.clock.advance(31)
    browser.login(user)
    r = browser.authorize()
    assert location(r).startswith("/security-info/mfa?c="), location(r)
    return location(r)


def submit(browser: Browser, mfa: str, code: str) -> int:
    page = browser.get_json(mfa).get_json()
    assert page["method"]["kind"] == "hardware_oath"
    body = {"code": code, "method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
    return browser.post_json(mfa, body).status_code


def test_imported_totp_token_serves_mfa_and_is_activated_by_its_first_code(
    browser: Browser,
) -> None:
    result = browser.reg.info.hardware_oath.import_file(
        csv_text=HEADER + f"alice,HW1,{B32},30,Acme,K1\n"
    )
    assert result.ok and result.imported == ("HW1",)
    (record,) = tokens(browser)
    assert record.data["activated"] is False and SECRET not in record.secret
    mfa = mfa_url(browser)
    assert submit(browser, mfa, "000000") == 400
    code = pyotp.TOTP(B32).at(browser.clock.now())
    assert submit(browser, mfa, code) == 303
    (record,) = tokens(browser)
    assert record.data["activated"] is True
    assert browser.reg.store.list_audit(user_id="alice", event_prefix="method.activated")


def test_amr_is_otp_not_hwk(browser: Browser) -> None:
    browser.reg.info.hardware_oath.import_file(csv_text=HEADER + f"alice,HW1,{B32},30,Acme,K1\n")
    mfa = mfa_url(browser)
    page = browser.get_json(mfa).get_json()
    code = pyotp.TOTP(B32).at(browser.clock.now())
    body = {"code": code, "method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
    r = browser.post_json(mfa, body)
    r = browser.get(location(r))
    issued = browser.host.codes[code_from(r) or ""]
    assert "otp" in issued["amr"] and "hwk" not in issued["amr"]
    assert issued["acr"] == "urn:combinedreg:acr:mfa"  # not the phishing-resistant acr


def test_import_is_all_or_nothing_and_refuses_a_serial_of_another_user(browser: Browser) -> None:
    service = browser.reg.info.hardware_oath
    assert service.import_file(csv_text=HEADER + f"bob,HW9,{B32},30,Acme,K1\n").ok
    result = service.import_file(
        csv_text=HEADER + f"alice,HW1,{B32},30,Acme,K1\nalice,HW9,{B32},60,Acme,K1\n"
    )
    assert not result.ok
    assert [str(p) for p in result.problems] == [
        "line 3: serial HW9 is already assigned to another user"
    ]
    assert tokens(browser) == []  # HW1 was not stored either
    assert notices(browser.reg.store, "alice") == []


def test_an_imported_token_is_told_to_its_owner(browser: Browser) -> None:
    """It signs in as them before its activation: the owner learns of it like of any method."""
    assert browser.reg.info.hardware_oath.import_file(
        csv_text=HEADER + f"alice,HW1,{B32},30,Acme,K1\n"
    ).ok
    assert notices(browser.reg.store, "alice") == [("added", "hardware_oath", "HW1")]


def test_an_import_undone_withdraws_its_notices(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another import takes HW2 between the checks and the writes: HW1 is taken back, and the
    notice queued with it is closed unsent (flush() would otherwise send it later)."""
    store = browser.reg.store
    add = store.add_method

    def another_import_got_there_first(record: MethodRecord, **kw: Any) -> None:
        if record.data.get("serial") == "HW2":
            raise InvalidInput("lookup", "already registered")
        add(record, **kw)

    monkeypatch.setattr(store, "add_method", another_import_got_there_first)
    result = browser.reg.info.hardware_oath.import_file(
        csv_text=HEADER + f"alice,HW1,{B32},30,Acme,K1\nalice,HW2,{B32},30,Acme,K1\n"
    )
    assert not result.ok and tokens(browser) == []
    assert notices(store, "alice") == [("added", "hardware_oath", "HW1")]
    skipped = store.list_audit(user_id="alice", event_prefix="notify.skipped")
    assert [e.detail["reason"] for e in skipped] == ["import undone"]
    assert browser.reg.info.notifier.pending() == []


def test_unknown_user_is_reported(browser: Browser) -> None:
    result = browser.reg.info.hardware_oath.import_file(
        csv_text=HEADER + f"mallory,HW1,{B32},30,Acme,K1\n"
    )
    assert [p.message for p in result.problems] == ["unknown user 'mallory'"]


def test_pskc_hotp_token_counter_moves_only_forward(browser: Browser) -> None:
    service = browser.reg.info.hardware_oath
    result = service.import_file(
        pskc_data=(DATA / "rfc6030_figure9.pskcxml").read_bytes(), default_user="alice"
    )
    assert result.ok, result.problems
    hotp = OathParams(kind=OathKind.HOTP)
    mfa = mfa_url(browser)
    assert submit(browser, mfa, code_at(RFC_SECRET, hotp, 2)) == 303  # two presses skipped
    mfa = mfa_url(browser)
    assert submit(browser, mfa, code_at(RFC_SECRET, hotp, 2)) == 400  # replay
    assert submit(browser, mfa, code_at(RFC_SECRET, hotp, 1)) == 400  # older counter
    assert submit(browser, mfa, code_at(RFC_SECRET, hotp, 3)) == 303
    (record,) = tokens(browser)
    assert record.counter == 4


def test_hotp_resync_with_two_codes_on_the_manage_page(browser: Browser) -> None:
    service = browser.reg.info.hardware_oath
    service.import_file(
        pskc_data=(DATA / "rfc6030_figure9.pskcxml").read_bytes(), default_user="alice"
    )
    hotp = OathParams(kind=OathKind.HOTP)
    mfa = mfa_url(browser)
    assert submit(browser, mfa, code_at(RFC_SECRET, hotp, 0)) == 303  # fresh MFA (AAL2)
    add = "/security-info/add/hardware_oath"
    page = browser.get_json(add).get_json()
    assert page["page"] == "hardware_oath_activate"
    (token,) = page["tokens"]
    assert token["event_based"] and token["activated"]
    body = {"action": "resync", "method_id": token["id"], "csrf_token": page["csrf_token"]}
    bad = browser.post_json(add, body | {"code": code_at(RFC_SECRET, hotp, 50), "code2": "000000"})
    assert bad.status_code == 400
    ok = browser.post_json(
        add, body | {"code": code_at(RFC_SECRET, hotp, 50), "code2": code_at(RFC_SECRET, hotp, 51)}
    )
    assert ok.status_code == 200 and ok.get_json()["notice"]
    (record,) = tokens(browser)
    assert record.counter == 52
    store = browser.reg.store
    trail = store.list_audit(user_id="alice", event_prefix="method.resync")
    assert [(e.event, e.detail.get("reason")) for e in trail] == [
        ("method.resynced", None),
        ("method.resync_failed", "code"),
    ]
    assert store.counters(read=["fail:user:alice:consecutive"]) == [0]  # cleared by the success
    again = browser.post_json(
        add, body | {"code": code_at(RFC_SECRET, hotp, 50), "code2": code_at(RFC_SECRET, hotp, 51)}
    )
    assert again.status_code == 400 and tokens(browser)[0].counter == 52  # no way back


def test_user_without_a_token_is_told_to_ask_the_admin(browser: Browser) -> None:
    browser.login("alice")
    assert browser.get_json("/security-info/add/hardware_oath").get_json()["page"] == (
        "hardware_oath_none"
    )


def test_cli_imports_a_pre_shared_key_pskc_file(tmp_path: Path, browser: Browser) -> None:
    db = tmp_path / "cli.sqlite3"
    config = tmp_path / "combinedreg.toml"
    config.write_text(
        "[general]\nenvironment = 'development'\n"
        f"[secrets]\nencryption_keys = ['{generate_key()}']\n"
        f"[storage.sqlite]\npath = '{db}'\n"
    )
    pskc = str(DATA / "rfc6030_figure6.pskcxml")
    runner = CliRunner()
    args = ["import-tokens", "--config", str(config), "--pskc", pskc]
    wrong = runner.invoke(main, [*args, "--key", "00" * 16, "--user", "alice"])
    assert wrong.exit_code == 1 and "nothing was imported" in wrong.output
    right = runner.invoke(
        main, [*args, "--key", "12345678901234567890123456789012", "--user", "alice"]
    )
    assert right.exit_code == 0, right.output
    assert "imported 1 token(s): 987654321" in right.output
    again = runner.invoke(
        main, [*args, "--key", "12345678901234567890123456789012", "--user", "bob"]
    )
    assert again.exit_code == 1 and "already assigned" in again.output
