"""App passwords through the WSGI stack and the host API (SECURITY.md case 37)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from webtest import Browser, location, notices

from oidc_combinedreg.crypto import fast_hasher_for_tests
from oidc_combinedreg.directory import PerUserMfa
from oidc_combinedreg.exceptions import AccessDenied, LimitReached
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.policy.planner import plan_registration
from oidc_combinedreg.policy.signin import RegistrationNeed
from oidc_combinedreg.web.steps import HANDLERS

ADD = "/security-info/add/app_password"
IP = "192.0.2.7"


@pytest.fixture
def enforced(make_browser: Callable[..., Browser]) -> Browser:
    browser = make_browser()
    browser.reg.directory.set_per_user_mfa("alice", PerUserMfa.ENFORCED)  # type: ignore[attr-defined]
    browser.reg.info.app_passwords.hasher = fast_hasher_for_tests()
    _enrolled(browser)
    return browser


def _enrolled(browser: Browser) -> None:
    browser.login("alice")
    wizard = location(browser.authorize())
    browser.register_totp(wizard)
    browser.post_json(wizard, {"action": "finish", "csrf_token": browser.csrf(wizard)})


def _create(browser: Browser, name: str = "Mail") -> str:
    r = browser.post_json(ADD, {"action": "create", "name": name, "csrf_token": browser.csrf(ADD)})
    assert r.status_code == 200, r.get_json()
    page = r.get_json()
    assert page["page"] == "app_password_created"
    return str(page["password"])


def _app_passwords(browser: Browser) -> list[str]:
    return [
        m.id for m in browser.reg.store.list_methods("alice") if m.kind is MethodKind.APP_PASSWORD
    ]


def test_create_once_then_check_from_a_legacy_client(enforced: Browser) -> None:
    password = _create(enforced)
    [stored] = enforced.reg.store.list_methods("alice")[1:]
    assert notices(enforced.reg.store, "alice")[-1] == ("added", "app_password", "Mail")
    assert password.replace(" ", "").encode() not in stored.secret  # only the Argon2 hash
    assert stored.secret.startswith(b"$argon2id$")
    # Shown exactly once: the next visit goes back to the overview.
    assert location(enforced.get_json(ADD)) == "/security-info/?done=added"
    assert password not in enforced.get(ADD + "?x=1").get_data(as_text=True)
    assert enforced.reg.check_app_password("alice", password, ip=IP) is True
    assert enforced.reg.check_app_password("alice", "abcd efgh jkmn pqrs", ip=IP) is False
    events = enforced.reg.store.list_audit(user_id="alice", event_prefix="app_password.")
    assert [(e.event, e.outcome, e.ip) for e in events] == [
        ("app_password.failed", "failure", IP),
        ("app_password.succeeded", "success", IP),
    ]
    assert all(password.replace(" ", "") not in repr(e.detail) for e in events)


def test_refused_for_a_user_whose_mfa_is_not_enforced(browser: Browser) -> None:
    _enrolled(browser)
    manage = browser.get_json("/security-info/").get_json()
    assert "app_password" not in [a["kind"] for a in manage["addable"]]
    r = browser.post_json(
        ADD, {"action": "create", "name": "Mail", "csrf_token": browser.csrf("/security-info/")}
    )
    assert r.status_code == 403
    user = browser.reg.directory.get_user("alice")
    assert user is not None
    with pytest.raises(AccessDenied):
        browser.reg.info.app_passwords.register(user, "Mail", ip=None)
    assert _app_passwords(browser) == []


def test_an_app_password_stops_working_when_enforcement_is_lifted(enforced: Browser) -> None:
    password = _create(enforced)
    enforced.reg.directory.set_per_user_mfa("alice", PerUserMfa.ENABLED)  # type: ignore[attr-defined]
    assert enforced.reg.check_app_password("alice", password, ip=IP) is False


def test_never_offered_or_accepted_at_browser_sign_in(enforced: Browser) -> None:
    password = _create(enforced)
    [app_id] = _app_passwords(enforced)
    enforced.login("alice")
    mfa = location(enforced.authorize())
    page = enforced.get_json(mfa).get_json()
    listed = [page["method"]["kind"], *(m["kind"] for m in page["others"])]
    assert "app_password" not in listed
    r = enforced.post_json(
        mfa, {"method_id": app_id, "code": password, "csrf_token": page["csrf_token"]}
    )
    assert r.status_code == 400  # treated as a wrong code for the default method
    assert enforced.host.codes == {}
    assert app_id not in enforced.reg.info.verifiers


def test_the_wizard_never_plans_nor_runs_app_passwords(enforced: Browser) -> None:
    user = enforced.reg.directory.get_user("alice")
    assert user is not None
    plan = plan_registration(
        needs=list(RegistrationNeed),
        user_id="alice",
        groups=user.groups,
        methods=[],
        policies=enforced.reg.config.policies,
        registrable=HANDLERS.keys(),
    )
    assert MethodKind.APP_PASSWORD not in {s.kind for s in plan.steps} | set(plan.alternatives)
    # The step itself refuses to run inside a sign-in (a continuation id), MFA fresh or not.
    r = enforced.post_json(
        f"{ADD}?c=some-sign-in",
        {"action": "create", "name": "x", "csrf_token": enforced.csrf("/security-info/")},
    )
    assert r.status_code == 403
    assert _app_passwords(enforced) == []


def test_a_deleted_app_password_stops_working_at_once(enforced: Browser) -> None:
    password = _create(enforced)
    [app_id] = _app_passwords(enforced)
    assert enforced.reg.check_app_password("alice", password, ip=IP)
    token = enforced.csrf("/security-info/")
    r = enforced.post_json(f"/security-info/methods/{app_id}/delete", {"csrf_token": token})
    assert location(r) == "/security-info/?done=deleted"
    assert enforced.reg.check_app_password("alice", password, ip=IP) is False


def test_the_41st_is_refused(enforced: Browser) -> None:
    user = enforced.reg.directory.get_user("alice")
    assert user is not None
    service = enforced.reg.info.app_passwords
    for i in range(40):
        service.register(user, f"app {i}", ip=None)
    with pytest.raises(LimitReached):
        service.register(user, "one too many", ip=None)
    assert len(_app_passwords(enforced)) == 40
    manage = enforced.get_json("/security-info/").get_json()
    assert "app_password" not in [a["kind"] for a in manage["addable"]]


def test_guessing_is_throttled_without_locking_browser_mfa(enforced: Browser) -> None:
    password = _create(enforced)
    limit = enforced.reg.config.throttle.failures_per_window
    for _ in range(limit):
        assert enforced.reg.check_app_password("alice", "abcd efgh jkmn pqrs", ip=IP) is False
    # The window is full: even the right password is refused until it passes.
    assert enforced.reg.check_app_password("alice", password, ip=IP) is False
    reasons = [
        e.detail["reason"]
        for e in enforced.reg.store.list_audit(
            user_id="alice", event_prefix="app_password.", limit=1
        )
    ]
    assert reasons == ["rate_limited"]
    # Browser MFA counts on its own key: not locked.
    enforced.reg.info.ctx.throttle.check("alice", None)
    enforced.clock.advance(enforced.reg.config.throttle.window + 1)
    assert enforced.reg.check_app_password("alice", password, ip=IP) is True


def test_without_a_client_address_conditional_access_fails_closed(enforced: Browser) -> None:
    password = _create(enforced)
    assert enforced.reg.check_app_password("alice", password, ip=None) is False
    [event] = enforced.reg.store.list_audit(user_id="alice", event_prefix="app_password.")
    assert event.detail["reason"] == "conditional_access"


def test_unknown_user_is_false_not_an_error(enforced: Browser) -> None:
    assert enforced.reg.check_app_password("nobody", "abcd efgh jkmn pqrs", ip=IP) is False


def test_anonymous_guessing_never_locks_the_owners_app_passwords_for_good(
    enforced: Browser,
) -> None:
    """SECURITY.md case 57: the host's legacy-protocol check is open to anyone with a user name.
    Wrong passwords over many windows (past NIST's 100 in a row) and from many addresses refuse
    the guessers for a window, never alice from her own address, and move no durable counter."""
    password = _create(enforced)
    for window in range(12):
        for n in range(10):
            ip = f"203.0.113.{n + 1}"
            assert enforced.reg.check_app_password("alice", "abcd efgh jkmn pqrs", ip=ip) is False
        if window % 3 == 0:
            assert enforced.reg.check_app_password("alice", password, ip=IP) is True
        enforced.clock.advance(enforced.reg.config.throttle.window + 1)
    assert enforced.reg.check_app_password("alice", password, ip=IP) is True
    assert enforced.reg.store.get_count("fail:user:app_password:alice:consecutive") == 0


def test_unknown_names_count_on_the_address_like_known_ones(enforced: Browser) -> None:
    """One address cannot burn Argon2 on endless made-up names, and once it is refused it is
    refused alike for every name: the refusal tells nothing about which accounts exist."""
    password = _create(enforced)
    stranger = "203.0.113.66"
    for n in range(enforced.reg.config.throttle.ip_failures_per_window):
        assert (
            enforced.reg.check_app_password(f"ghost{n}", "abcd efgh jkmn pqrs", ip=stranger)
            is False
        )
    assert enforced.reg.check_app_password("alice", password, ip=stranger) is False
    [event] = enforced.reg.store.list_audit(user_id="alice", event_prefix="app_password.", limit=1)
    assert event.detail["reason"] == "rate_limited"
    assert enforced.reg.check_app_password("alice", password, ip=IP) is True


def test_an_admins_require_reregistration_revokes_app_passwords(enforced: Browser) -> None:
    """Issue 23.6 (decision 87): an app password stands for password plus MFA, so the admin's
    "require re-registration" (lost phone, suspected compromise) removes it with the MFA
    methods: audited and told to the user like any admin delete."""
    password = _create(enforced)
    [app_id] = _app_passwords(enforced)
    assert enforced.reg.check_app_password("alice", password, ip=IP) is True
    removed = enforced.reg.admin.require_reregistration("alice", actor="ops", ip=IP)
    assert app_id in removed and len(removed) == 2  # the authenticator app and the app password
    assert _app_passwords(enforced) == []
    assert enforced.reg.check_app_password("alice", password, ip=IP) is False
    assert ("deleted", "app_password", "Mail") in notices(enforced.reg.store, "alice")
    [event] = enforced.reg.store.list_audit(
        user_id="alice", event_prefix="admin.reregister_required"
    )
    assert event.detail["removed"] == 2
