"""Clock skew at the MFA step through the whole WSGI stack (SECURITY.md case 25).

The server's clock is injected (``FrozenClock``); the "phone" or "token" that makes the code runs
``offset`` 30-second steps ahead of or behind it. One step either way is accepted (RFC 6238 5.2
recommends at most one step of network delay), two are refused. Only the server's time counts: a
request's ``Date`` header claiming the phone's time changes nothing. The core tests
(tests/core/test_totp.py, test_hardware_oath.py) check the window function; these check that the
window the sign-in actually uses is that one, and that a refused code issues no authorization code.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from email.utils import formatdate

import pyotp
import pytest
from test_web_manage import enrolled
from webtest import Browser, code_from, location
from werkzeug.test import TestResponse

STEP = 30
SKEWS = [
    pytest.param(-2, False, id="phone two steps behind -> refused"),
    pytest.param(-1, True, id="phone one step behind -> accepted"),
    pytest.param(0, True, id="in step -> accepted"),
    pytest.param(1, True, id="phone one step ahead -> accepted"),
    pytest.param(2, False, id="phone two steps ahead -> refused"),
]


def _at_mfa(browser: Browser) -> tuple[str, dict[str, str]]:
    """A second sign-in ten minutes after the first (the registration's step is long past,
    so a code two steps old is still newer than the last step used)."""
    browser.clock.advance(600)
    browser.login("alice")
    mfa = location(browser.authorize())
    assert mfa.startswith("/security-info/mfa?c="), mfa
    page = browser.get_json(mfa).get_json()
    return mfa, {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}


def _finish(browser: Browser, verified: TestResponse) -> str | None:
    """Follow a verified MFA step to the host's authorization endpoint; the code it issued."""
    r = browser.get(location(verified))
    return code_from(r)


@pytest.mark.parametrize(("offset", "accepted"), SKEWS)
def test_totp_skew_through_the_stack(browser: Browser, offset: int, accepted: bool) -> None:
    secret = enrolled(browser)
    mfa, form = _at_mfa(browser)
    phone_time = browser.clock.now() + STEP * offset
    r = browser.post_json(mfa, {**form, "code": pyotp.TOTP(secret).at(phone_time)})
    if accepted:
        assert r.status_code == 303, r.get_data(as_text=True)
        code = _finish(browser, r)
        assert code is not None and "otp" in browser.host.codes[code]["amr"]
        return
    assert r.status_code == 400
    assert browser.host.codes == {}
    [failed] = browser.reg.store.list_audit(user_id="alice", event_prefix="mfa.failed", limit=5)
    assert failed.outcome != "ok"
    # The same sign-in then passes with a code made on the server's time: the refusal was the skew.
    r = browser.post_json(mfa, {**form, "code": pyotp.TOTP(secret).at(browser.clock.now())})
    assert r.status_code == 303
    assert _finish(browser, r) is not None


@pytest.mark.parametrize("offset", [-2, 2])
def test_a_date_header_with_the_phones_time_does_not_move_the_window(
    browser: Browser, offset: int
) -> None:
    secret = enrolled(browser)
    mfa, form = _at_mfa(browser)
    phone_time = browser.clock.now() + STEP * offset
    claimed = {"Date": formatdate(phone_time, usegmt=True)}
    r = browser.post_json(mfa, {**form, "code": pyotp.TOTP(secret).at(phone_time)}, headers=claimed)
    assert r.status_code == 400 and browser.host.codes == {}


def test_a_refused_skewed_code_is_not_remembered_as_used(browser: Browser) -> None:
    """A code two steps ahead is refused; when the server's clock reaches that step, it is the
    current code and works: the refusal did not record the step as used."""
    secret = enrolled(browser)
    mfa, form = _at_mfa(browser)
    ahead = pyotp.TOTP(secret).at(browser.clock.now() + 2 * STEP)
    assert browser.post_json(mfa, {**form, "code": ahead}).status_code == 400
    browser.clock.advance(2 * STEP)
    assert browser.post_json(mfa, {**form, "code": ahead}).status_code == 303


# -- hardware OATH (an admin imports a TOTP token; its own clock drifts) -------------------------

HEADER = "upn,serial number,secret key,time interval,manufacturer,model\n"
B32 = base64.b32encode(bytes(range(20))).decode()


def _token_code(at: float) -> str:
    """The token's display at time ``at``: oathtool (an implementation independent of ours) when
    installed, else pyotp."""
    if shutil.which("oathtool"):
        out = subprocess.run(
            ["oathtool", "--totp", "-b", B32, "--now", f"@{int(at)}"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    return pyotp.TOTP(B32).at(at)


@pytest.mark.parametrize(("offset", "accepted"), SKEWS)
def test_hardware_totp_token_skew_through_the_stack(
    browser: Browser, offset: int, accepted: bool
) -> None:
    imported = browser.reg.info.hardware_oath.import_file(
        csv_text=HEADER + f"alice,HW1,{B32},30,Acme,K1\n"
    )
    assert imported.ok
    mfa, form = _at_mfa(browser)
    assert browser.get_json(mfa).get_json()["method"]["kind"] == "hardware_oath"
    r = browser.post_json(mfa, {**form, "code": _token_code(browser.clock.now() + STEP * offset)})
    if accepted:
        assert r.status_code == 303
        assert _finish(browser, r) is not None
    else:
        assert r.status_code == 400 and browser.host.codes == {}
        [token] = [m for m in browser.reg.store.list_methods("alice")]
        assert token.data["activated"] is False  # a refused code does not activate the token
