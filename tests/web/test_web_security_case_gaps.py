"""SECURITY.md cases the suite covered only in part, through the WSGI stack (docs/security-cases.md
names these as the tests for them):

* 7: a registration the relying party starts (an essential MFA acr for a user without a method)
  obeys the Conditional Access user-action policy like the wizard's own;
* 16: a first registration from a trusted address is allowed and told to the user, with the time
  and the address;
* 18: a pending authenticator-app secret is tied to the session that asked for it;
* 22: a wizard "skip" is counted on the server: a replay from another session is refused;
* 26: malformed codes at the MFA step are 400 pages (or 413), never a 500 and never a code;
* 27: failures at the MFA step and at an enrollment confirm in another session count against one
  consecutive-failure limit; at the limit every code is refused, the in-flight sign-in's included
  (decision 55), while the password is not locked (its own counter);
* 50: the session id is rotated after a Temporary Access Pass sign-in and after a step-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from reset_helpers import add_totp
from test_web_acr_values import MFA as MFA_ACR
from test_web_acr_values import essential
from test_web_conditional_access import TRUSTED, UNTRUSTED, seeded  # noqa: F401  (fixture)
from test_web_manage import enrolled
from test_web_step_up import RP_DECIDES, follow
from test_web_tap import issue, make_tap_browser, tap_login  # noqa: F401  (fixture)
from webtest import Browser, code_from, location, notices

COOKIE = "combinedreg"


def _cookie(browser: Browser) -> str | None:
    cookie = browser.client.get_cookie(COOKIE) or browser.client.get_cookie(f"__Host-{COOKIE}")
    return cookie.value if cookie is not None else None


def _wizard(browser: Browser, user: str = "alice") -> str:
    browser.login(user)
    wizard = location(browser.authorize())
    assert wizard.startswith("/security-info/wizard"), wizard
    return wizard


def _to_app_setup(browser: Browser, wizard: str) -> tuple[str, str]:
    """intro -> setup: (the secret shown, the CSRF token)."""
    token = browser.csrf(wizard)
    browser.post_json(wizard, {"action": "next", "csrf_token": token})
    return str(browser.get_json(wizard).get_json()["secret"]), token


# -- case 7 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forwarded", "blocked"),
    [
        pytest.param(UNTRUSTED, True, id="from outside the office -> blocked"),
        pytest.param(TRUSTED, False, id="from the office -> the wizard"),
    ],
)
def test_a_registration_the_rp_asks_for_obeys_conditional_access(
    seeded: Callable[..., Browser],  # noqa: F811
    forwarded: str,
    blocked: bool,
) -> None:
    browser = seeded(forwarded=forwarded, **RP_DECIDES)  # nothing but the RP asks for MFA
    browser.login("bob")  # bob has no method
    r = browser.get(f"/authorize?client_id=demo&state=s&{essential(MFA_ACR)}")
    while r.status_code == 303 and location(r).startswith("/security-info/"):
        r = browser.get_json(location(r))
    if blocked:
        assert r.status_code == 403 and r.get_json()["page"] == "blocked"
        assert r.get_json()["reason"] == "registration_location"
        assert browser.reg.store.list_methods("bob") == [] and browser.host.codes == {}
    else:
        assert r.status_code == 200 and r.get_json()["page"] == "totp_intro"


# -- case 16 --------------------------------------------------------------------------------------


def test_a_first_registration_from_a_trusted_address_is_allowed_and_told(
    seeded: Callable[..., Browser],  # noqa: F811
) -> None:
    browser = seeded(forwarded=TRUSTED)  # behind the configured proxy, from the office
    wizard = _wizard(browser)
    browser.register_totp(wizard)
    assert [m.kind.value for m in browser.reg.store.list_methods("alice")] == ["totp"]
    assert notices(browser.reg.store, "alice") == [("added", "totp", "Authenticator app")]
    [added] = browser.reg.store.list_audit(user_id="alice", event_prefix="method.added")
    assert added.ip == TRUSTED and added.at == browser.clock.now()


# -- case 18 --------------------------------------------------------------------------------------


def test_a_pending_app_secret_belongs_to_its_session(browser: Browser) -> None:
    first_wizard = _wizard(browser)
    first_secret, first_token = _to_app_setup(browser, first_wizard)
    other = Browser(browser.reg, browser.host, browser.clock)  # alice in a second browser
    other_wizard = _wizard(other)
    other_secret, other_token = _to_app_setup(other, other_wizard)
    assert other_secret != first_secret  # each session has its own pending secret
    # The second session cannot confirm the first one's secret (nor see it again on reload).
    other.post_json(other_wizard, {"action": "next", "csrf_token": other_token})
    code = pyotp.TOTP(first_secret).at(browser.clock.now())
    r = other.post_json(other_wizard, {"action": "verify", "code": code, "csrf_token": other_token})
    assert r.status_code == 400 and browser.reg.store.list_methods("alice") == []
    assert other.get_json(other_wizard).get_json().get("secret") in (None, other_secret)
    # The first session's reload shows its own secret unchanged, and it binds there.
    assert browser.get_json(first_wizard).get_json()["secret"] == first_secret
    browser.post_json(first_wizard, {"action": "next", "csrf_token": first_token})
    r = browser.post_json(
        first_wizard, {"action": "verify", "code": code, "csrf_token": first_token}
    )
    assert r.status_code == 303
    [app] = browser.reg.store.list_methods("alice")
    assert app.kind.value == "totp"


# -- case 22 --------------------------------------------------------------------------------------


def test_a_skip_is_counted_on_the_server_and_a_replay_from_another_session_is_refused(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(
        policies={
            "mfa_registration": {"enforced": True, "skips_allowed": 1},
            "wizard_preference": ["totp"],
        }
    )
    first = _wizard(browser)
    other = Browser(browser.reg, browser.host, browser.clock)
    second = _wizard(other)  # both sessions show one skip left
    assert browser.get_json(first).get_json()["skips_left"] == 1
    assert other.get_json(second).get_json()["skips_left"] == 1
    r = browser.post_json(first, {"action": "skip", "csrf_token": browser.csrf(first)})
    assert r.status_code == 303
    assert code_from(browser.get(location(r))) is not None
    # The second session replays the same skip: the allowance is spent on the server.
    r = other.post_json(second, {"action": "skip", "csrf_token": other.csrf(second)})
    assert r.status_code == 403
    assert browser.host.codes and len(browser.host.codes) == 1
    assert browser.reg.store.get_user_state("alice").skips_used == 1


# -- case 26 --------------------------------------------------------------------------------------

MALFORMED_CODES = [
    pytest.param("", id="empty"),
    pytest.param("12345", id="5 digits"),
    pytest.param("1234567", id="7 digits"),
    pytest.param("１２３４５６", id="full-width digits"),
    pytest.param("+12345", id="plus sign"),
    pytest.param(" 123456", id="leading space"),
    pytest.param("123456 ", id="trailing space"),
    pytest.param("12 3456", id="inner space"),
    pytest.param(["123456"], id="a list, not text"),
    pytest.param(123456, id="a number, not text"),
    pytest.param(None, id="null"),
]


@pytest.mark.parametrize("code", MALFORMED_CODES)
def test_a_malformed_code_at_the_mfa_step_is_a_400_page(browser: Browser, code: object) -> None:
    secret = enrolled(browser)
    browser.clock.advance(120)
    browser.login("alice")
    mfa = location(browser.authorize())
    page = browser.get_json(mfa).get_json()
    form = {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
    r = browser.post_json(mfa, {**form, "code": code})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    assert r.get_json()["errors"]["code"]
    assert browser.host.codes == {}
    # The HTML form the same way (urlencoded), then the right code still works.
    if isinstance(code, str):
        assert browser.post(mfa, data={**form, "code": code}).status_code == 400
    good = browser.post_json(mfa, {**form, "code": pyotp.TOTP(secret).at(browser.clock.now())})
    assert good.status_code == 303


def test_a_megabyte_code_is_refused_without_a_500(browser: Browser) -> None:
    enrolled(browser)
    browser.clock.advance(120)
    browser.login("alice")
    mfa = location(browser.authorize())
    page = browser.get_json(mfa).get_json()
    form = {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
    r = browser.post_json(mfa, {**form, "code": "1" * 1_000_000})
    assert r.status_code in (400, 413)
    assert browser.host.codes == {}


@pytest.mark.parametrize("code", MALFORMED_CODES)
def test_a_malformed_code_at_the_enrollment_confirm_is_a_400_page(
    browser: Browser, code: object
) -> None:
    wizard = _wizard(browser)
    secret, token = _to_app_setup(browser, wizard)
    browser.post_json(wizard, {"action": "next", "csrf_token": token})  # setup -> verify
    r = browser.post_json(wizard, {"action": "verify", "code": code, "csrf_token": token})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    assert r.get_json()["errors"]["code"]
    assert browser.reg.store.list_methods("alice") == []
    good = pyotp.TOTP(secret).at(browser.clock.now())
    r = browser.post_json(wizard, {"action": "verify", "code": good, "csrf_token": token})
    assert r.status_code == 303  # the pending secret survived the bad input


# -- case 27 --------------------------------------------------------------------------------------

SMALL_LIMITS = {"max_consecutive_failures": 30, "failures_per_window": 10, "window": 60}


def _wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def test_failures_at_sign_in_and_at_an_enrollment_confirm_share_one_lockout(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(throttle=SMALL_LIMITS)
    secret = enrolled(browser)  # session B: MFA fresh, adds a second app below
    add = "/security-info/add/totp"
    token = browser.csrf(add)
    browser.post_json(add, {"action": "next", "csrf_token": token})  # intro -> setup
    browser.post_json(add, {"action": "next", "csrf_token": token})  # setup -> verify
    browser.clock.advance(60)

    signing_in = Browser(browser.reg, browser.host, browser.clock)  # session A: at the MFA step
    signing_in.login("alice")
    mfa = location(signing_in.authorize())
    page = signing_in.get_json(mfa).get_json()
    form = {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}

    statuses: list[int] = []
    for _round in range(3):  # 3 windows x (5 at the MFA step + 5 at the confirm) = 30 failures
        for _ in range(5):
            now_code = pyotp.TOTP(secret).at(browser.clock.now())
            r = signing_in.post_json(mfa, {**form, "code": _wrong(now_code)})
            statuses.append(r.status_code)
            r = browser.post_json(add, {"action": "verify", "code": "000000", "csrf_token": token})
            statuses.append(r.status_code)
        browser.clock.advance(SMALL_LIMITS["window"] + 1)  # past the cool-down window
    assert statuses == [400] * 30

    # The limit is reached across both flows: the right code is refused in the in-flight
    # sign-in, in a brand-new sign-in, and nothing is issued.
    right = {**form, "code": pyotp.TOTP(secret).at(browser.clock.now())}
    locked = signing_in.post_json(mfa, right)
    assert locked.status_code == 429
    browser.clock.advance(SMALL_LIMITS["window"] + 1)  # not a cool-down: a lock, windows later
    right = {**form, "code": pyotp.TOTP(secret).at(browser.clock.now())}
    assert signing_in.post_json(mfa, right).status_code == 429
    fresh = Browser(browser.reg, browser.host, browser.clock)
    fresh.login("alice")  # the password is not locked: its own counter
    fresh_mfa = location(fresh.authorize())
    assert fresh_mfa.startswith("/security-info/mfa")
    fresh_page = fresh.get_json(fresh_mfa).get_json()
    r = fresh.post_json(
        fresh_mfa,
        {
            "method_id": fresh_page["method"]["id"],
            "csrf_token": fresh_page["csrf_token"],
            "code": pyotp.TOTP(secret).at(browser.clock.now()),
        },
    )
    assert r.status_code == 429
    assert browser.host.codes == {}
    assert len(browser.reg.store.list_methods("alice")) == 1  # the second app was never bound


# -- case 50 --------------------------------------------------------------------------------------


def test_the_session_id_changes_after_a_temporary_access_pass(
    make_tap_browser: Callable[..., Browser],  # noqa: F811
) -> None:
    browser = make_tap_browser()
    code = issue(browser)
    browser.login("alice")  # a session exists already (password, at the wizard)
    assert location(browser.authorize()).startswith("/security-info/wizard")
    before = _cookie(browser)
    assert before is not None
    assert tap_login(browser, code) == 303
    browser.get(location(browser.authorize()))
    after = _cookie(browser)
    assert after is not None and after != before
    assert browser.reg.store.load_session(before) is None


def test_the_session_id_changes_after_a_step_up(make_browser: Callable[..., Browser]) -> None:
    browser = make_browser(**RP_DECIDES)
    secret = add_totp(browser.reg, "alice")
    browser.clock.advance(60)
    browser.login("alice")
    kind, _ = follow(browser, "")  # the RP asks for nothing: the password is enough
    assert kind == "code"
    before = _cookie(browser)
    kind, mfa_url = follow(browser, "acr_values=urn:combinedreg:acr:mfa")
    assert kind == "mfa"
    page: Any = browser.get_json(mfa_url).get_json()
    r = browser.post_json(
        mfa_url,
        {
            "method_id": page["method"]["id"],
            "csrf_token": page["csrf_token"],
            "code": pyotp.TOTP(secret).at(browser.clock.now()),
        },
    )
    assert r.status_code == 303
    after = _cookie(browser)
    assert before is not None and after is not None and after != before
    assert browser.reg.store.load_session(before) is None
