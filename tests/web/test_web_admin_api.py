"""The admin JSON API through the WSGI stack: auth, every operation, audit (issue 8, part 2)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from admin_helpers import (
    ALICE_TOKEN,
    BOB_TOKEN,
    OPS_TOKEN,
    admin_section,
    api,
    fast_taps,
    sign_in_and_register_totp,
)
from webtest import Browser, location, notices

from oidc_combinedreg.directory import PerUserMfa

UNTRUSTED = "203.0.113.9"


@pytest.fixture
def browser(make_browser: Callable[..., Browser]) -> Browser:
    return fast_taps(make_browser(admin=admin_section()))


# -- authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        pytest.param({}, "Bearer", id="no Authorization header"),
        pytest.param({"Authorization": "Basic b3BzOm9wcw=="}, "Bearer", id="another scheme"),
        pytest.param({"Authorization": "Bearer"}, "Bearer", id="a scheme without a token"),
        pytest.param(
            {"Authorization": "Bearer crg_admin_wrong"},
            'Bearer error="invalid_token"',
            id="a wrong token",
        ),
        pytest.param(
            {"Authorization": "Bearer " + OPS_TOKEN[:-1]},
            'Bearer error="invalid_token"',
            id="the right token less its last character",
        ),
    ],
)
def test_calls_without_the_right_token_get_401_and_change_nothing(
    browser: Browser, headers: dict[str, str], challenge: str
) -> None:
    sign_in_and_register_totp(browser)
    r = api(browser, "POST", "/users/alice/reregister", token=None, headers=headers)
    assert r.status_code == 401
    assert r.get_json() == {"error": "unauthorized"}
    assert r.headers["WWW-Authenticate"] == challenge
    assert r.headers["Cache-Control"] == "no-store"
    assert len(browser.reg.store.list_methods("alice")) == 1


def test_a_wrong_token_is_audited_with_the_source_ip(browser: Browser) -> None:
    browser.remote_addr = "198.51.100.7"
    api(browser, "GET", "/audit", token="crg_admin_guess")
    denied = browser.reg.store.list_audit(event_prefix="admin.denied")
    assert [(e.ip, e.detail["reason"]) for e in denied] == [("198.51.100.7", "admin: wrong token")]


def test_without_configured_tokens_the_api_is_off(make_browser: Callable[..., Browser]) -> None:
    browser = make_browser()
    assert api(browser, "GET", "/audit").status_code == 401
    # The document is public: it describes the API, it holds no data.
    assert api(browser, "GET", "/openapi.json", token=None).status_code == 200


@pytest.mark.parametrize(
    ("token", "status"),
    [
        pytest.param(ALICE_TOKEN, 200, id="a token of an admin-group member works"),
        pytest.param(BOB_TOKEN, 403, id="a valid token of a non-member is forbidden"),
    ],
)
def test_the_admin_group_is_checked_on_every_call(
    make_browser: Callable[..., Browser], token: str, status: int
) -> None:
    browser = make_browser(
        groups={"alice": frozenset({"admins"})}, admin=admin_section(group="admins")
    )
    assert api(browser, "GET", "/audit", token=token).status_code == status


def test_leaving_the_admin_group_revokes_the_token(make_browser: Callable[..., Browser]) -> None:
    groups = {"alice": frozenset({"admins"})}
    browser = make_browser(groups=groups, admin=admin_section(group="admins"))
    assert api(browser, "GET", "/audit", token=ALICE_TOKEN).status_code == 200
    groups["alice"] = frozenset()
    assert api(browser, "GET", "/audit", token=ALICE_TOKEN).status_code == 403


def test_the_api_ignores_the_browser_session_and_needs_no_csrf_token(browser: Browser) -> None:
    sign_in_and_register_totp(browser)  # the browser holds a signed-in session cookie
    r = api(browser, "POST", "/users/alice/sessions/revoke", token=None)
    assert r.status_code == 401  # a cookie is not a credential here
    r = api(browser, "POST", "/users/alice/sessions/revoke")  # no CSRF token: none is needed
    assert r.status_code == 200 and r.get_json()["revoked"] >= 1
    assert "Set-Cookie" not in r.headers


# -- operations -----------------------------------------------------------------------------------


def test_list_methods_shows_kinds_and_never_a_secret(browser: Browser) -> None:
    secret = sign_in_and_register_totp(browser)
    r = api(browser, "GET", "/users/alice/methods")
    body = r.get_json()
    assert r.status_code == 200
    assert [m["kind"] for m in body["methods"]] == ["totp"]
    assert body["default_method_id"] == body["methods"][0]["id"] and body["tap"] is None
    assert secret not in r.get_data(as_text=True)


def test_unknown_users_are_404(browser: Browser) -> None:
    r = api(browser, "GET", "/users/nobody/methods")
    assert r.status_code == 404 and r.get_json()["error"] == "not_found"


def test_delete_a_method_is_audited_with_actor_and_ip(browser: Browser) -> None:
    sign_in_and_register_totp(browser)
    method_id = browser.reg.store.list_methods("alice")[0].id
    browser.remote_addr = "192.0.2.44"
    assert api(browser, "DELETE", f"/users/bob/methods/{method_id}").status_code == 404  # IDOR
    assert api(browser, "DELETE", f"/users/alice/methods/{method_id}").status_code == 204
    assert api(browser, "DELETE", f"/users/alice/methods/{method_id}").status_code == 404
    assert browser.reg.store.list_methods("alice") == []
    deleted = browser.reg.store.list_audit(event_prefix="method.deleted")[0]
    assert (deleted.user_id, deleted.ip, deleted.detail["actor"]) == ("alice", "192.0.2.44", "ops")
    # The owner is told, as for a delete of their own.
    assert notices(browser.reg.store, "alice")[-1] == ("deleted", "totp", "Authenticator app")
    [told] = browser.reg.store.list_audit(user_id="alice", event_prefix="notify.queued", limit=1)
    assert told.ip == "192.0.2.44"


def test_require_reregistration_runs_the_wizard_at_the_next_sign_in(browser: Browser) -> None:
    sign_in_and_register_totp(browser)
    r = api(browser, "POST", "/users/alice/reregister")
    assert r.status_code == 200 and len(r.get_json()["removed"]) == 1
    assert notices(browser.reg.store, "alice")[-1][:2] == ("deleted", "totp")
    assert api(browser, "GET", "/users/alice/methods").get_json()["reregister"] is True
    browser.clock.advance(60)
    browser.login("alice")
    step = location(browser.authorize())
    assert step.startswith("/security-info/wizard"), "no MFA step: the methods are gone"
    wizard = browser.get_json(step).get_json()
    assert "admin_reregister" in wizard.get("needs", []) or wizard["page"] == "totp_intro"


def test_require_reregistration_leaves_reset_only_methods_and_an_issued_pass(
    browser: Browser,
) -> None:
    """What re-registration does not revoke (docs/admin.md, decision 87): the email method (reset
    only) and a Temporary Access Pass issued before, the usual way back in."""
    from reset_helpers import add_email

    sign_in_and_register_totp(browser)
    add_email(browser.reg, "alice")
    assert api(browser, "POST", "/users/alice/tap").status_code == 201
    r = api(browser, "POST", "/users/alice/reregister")
    assert r.status_code == 200 and len(r.get_json()["removed"]) == 1
    kinds = [m["kind"] for m in api(browser, "GET", "/users/alice/methods").get_json()["methods"]]
    assert kinds == ["email"]
    assert api(browser, "GET", "/users/alice/tap").status_code == 200


def test_revoke_sessions_signs_the_user_out_of_the_middleware(browser: Browser) -> None:
    sign_in_and_register_totp(browser)
    assert browser.get_json("/security-info/").status_code in (200, 303)
    r = api(browser, "POST", "/users/alice/sessions/revoke")
    assert r.get_json()["revoked"] == 1
    assert browser.get_json("/security-info/").status_code == 401


def test_set_per_user_mfa_through_the_directory(browser: Browser) -> None:
    r = api(browser, "PUT", "/users/alice/per-user-mfa", json={"state": "enforced"})
    assert r.status_code == 200 and r.get_json() == {"user_id": "alice", "state": "enforced"}
    user = browser.reg.directory.get_user("alice")
    assert user is not None and user.per_user_mfa is PerUserMfa.ENFORCED
    bad = api(browser, "PUT", "/users/alice/per-user-mfa", json={"state": "sometimes"})
    assert bad.status_code == 400


def test_per_user_mfa_with_a_read_only_directory_is_501(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(user_id: str, state: PerUserMfa) -> None:
        raise NotImplementedError

    monkeypatch.setattr(browser.reg.directory, "set_per_user_mfa", refuse)
    r = api(browser, "PUT", "/users/alice/per-user-mfa", json={"state": "enabled"})
    assert r.status_code == 501 and "Directory" in r.get_json()["message"]


def test_tap_issue_read_and_revoke(browser: Browser) -> None:
    r = api(browser, "POST", "/users/alice/tap", json={"lifetime_minutes": 120, "one_time": False})
    assert r.status_code == 201
    issued = r.get_json()
    assert issued["expires_at"] - issued["created_at"] == 7200 and issued["one_time"] is False
    status = api(browser, "GET", "/users/alice/tap")
    assert status.status_code == 200 and issued["code"] not in status.get_data(as_text=True)
    assert status.get_json()["usable"] is True
    assert api(browser, "DELETE", "/users/alice/tap").status_code == 204
    assert api(browser, "GET", "/users/alice/tap").status_code == 404
    assert api(browser, "DELETE", "/users/alice/tap").status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        pytest.param("/users/nobody/tap", {}, 404, id="an unknown user"),
        pytest.param("/users/alice/tap", {"lifetime_minutes": 5}, 400, id="shorter than 10 min"),
        pytest.param("/users/alice/tap", {"lifetime_minutes": True}, 400, id="a boolean lifetime"),
        pytest.param("/users/alice/tap", {"one_time": "yes"}, 400, id="a string for one_time"),
    ],
)
def test_tap_issue_refusals(
    browser: Browser, path: str, body: dict[str, object], status: int
) -> None:
    assert api(browser, "POST", path, json=body).status_code == status
    assert browser.reg.store.peek_challenge("tap:alice") is None


CA_BLOCK_OUTSIDE_OFFICE = {
    "named_locations": [{"name": "office", "ranges": ["127.0.0.0/8"], "trusted": True}],
    "conditional_access": [
        {
            "name": "Registration from the office only",
            "state": "on",
            "assignments": {"include_users": ["all"]},
            "target": {"user_action": "register-security-information"},
            "conditions": {"locations": {"include": ["any"], "exclude": ["all-trusted"]}},
            "grant": {"block": True},
        }
    ],
}


def test_binding_credentials_on_a_users_behalf_obeys_conditional_access(
    make_browser: Callable[..., Browser],
) -> None:
    """SECURITY.md case 7: the registration rule covers the admin on-behalf path too."""
    browser = fast_taps(make_browser(admin=admin_section(), **CA_BLOCK_OUTSIDE_OFFICE))
    browser.remote_addr = UNTRUSTED
    assert api(browser, "POST", "/users/alice/tap").status_code == 403
    assert browser.reg.store.peek_challenge("tap:alice") is None
    browser.remote_addr = "127.0.0.1"
    assert api(browser, "POST", "/users/alice/tap").status_code == 201


def _csv(user: str, serial: str) -> str:
    seed = base64.b32encode(bytes(range(20))).decode()
    return (
        "upn,serial number,secret key,time interval,manufacturer,model\n"
        f"{user},{serial},{seed},30,Contoso,H1\n"
    )


def test_import_hardware_tokens_all_or_nothing(browser: Browser) -> None:
    body = {"format": "csv", "content": _csv("alice", "SN-1")}
    r = api(browser, "POST", "/hardware-tokens", json=body)
    assert r.status_code == 200 and r.get_json() == {"imported": ["SN-1"], "problems": []}
    again = api(browser, "POST", "/hardware-tokens", json=body)
    assert (
        again.status_code == 422
        and "already assigned" in again.get_json()["problems"][0]["message"]
    )
    kinds = [m["kind"] for m in api(browser, "GET", "/users/alice/methods").get_json()["methods"]]
    assert kinds == ["hardware_oath"]
    bad = api(browser, "POST", "/hardware-tokens", json={"format": "xml", "content": ""})
    assert bad.status_code == 400


def test_the_methods_say_whether_a_hardware_token_is_activated(browser: Browser) -> None:
    """Issue 23.8: an imported token is not activated until the user's first code; the admin
    API says which (null for kinds without activation), and the OpenAPI document declares it."""
    import pyotp
    from test_web_hardware_oath import mfa_url, submit

    body = {"format": "csv", "content": _csv("alice", "SN-1")}
    assert api(browser, "POST", "/hardware-tokens", json=body).status_code == 200
    [token] = api(browser, "GET", "/users/alice/methods").get_json()["methods"]
    assert token["kind"] == "hardware_oath" and token["activated"] is False
    seed = base64.b32encode(bytes(range(20))).decode()
    assert submit(browser, mfa_url(browser), pyotp.TOTP(seed).at(browser.clock.now())) == 303
    [token] = api(browser, "GET", "/users/alice/methods").get_json()["methods"]
    assert token["activated"] is True
    doc = api(browser, "GET", "/openapi.json").get_json()
    method = doc["components"]["schemas"]["Method"]
    assert "activated" in method["properties"] and "activated" in method["required"]


def test_kinds_without_activation_say_null(browser: Browser) -> None:
    sign_in_and_register_totp(browser)
    [app] = api(browser, "GET", "/users/alice/methods").get_json()["methods"]
    assert app["kind"] == "totp" and app["activated"] is None


# -- reports and audit ----------------------------------------------------------------------------


def test_reports_and_audit_filters(browser: Browser) -> None:
    secret = sign_in_and_register_totp(browser)
    browser.clock.advance(3600)
    api(browser, "POST", "/users/bob/tap")
    rows = api(browser, "GET", "/reports/registration").get_json()["users"]
    assert [(r["user_id"], r["mfa_capable"], r["methods"]) for r in rows] == [
        ("alice", True, ["totp"])
    ]
    usage = api(browser, "GET", "/reports/usage?since=2023-11-14T00:00:00Z").get_json()
    assert usage["methods"]["totp"] == {"methods": 1, "users": 1, "added": 1}
    assert usage["activity"]["registration"]["succeeded"] == 1
    assert usage["activity"]["tap"]["started"] == 1
    later = api(browser, "GET", "/reports/usage?since=2023-11-14T23:00:00Z").get_json()
    assert later["activity"]["registration"]["succeeded"] == 0

    def events(query: str) -> list[str]:
        r = api(browser, "GET", "/audit" + query)
        assert r.status_code == 200, r.get_data(as_text=True)
        return [e["event"] for e in r.get_json()["events"]]

    assert events("?user=bob") == ["tap.issued"]
    assert set(events("?event=method.")) == {"method.added"}
    assert events("?until=2023-11-14T22:13:20Z") == []
    assert "tap.issued" not in events("?until=2023-11-14T22:30:00Z")
    assert len(events("?limit=1")) == 1
    assert secret not in api(browser, "GET", "/audit?limit=1000").get_data(as_text=True)
    for bad in ("?since=yesterday", "?limit=0", "?limit=abc", "?user="):
        assert api(browser, "GET", "/audit" + bad).status_code == 400, bad


def test_every_audit_row_has_time_and_source_ip(browser: Browser) -> None:
    """SECURITY.md case 17: every change audited with time and source IP."""
    browser.remote_addr = "192.0.2.81"
    sign_in_and_register_totp(browser)
    api(browser, "POST", "/users/alice/reregister")
    for row in api(browser, "GET", "/audit?event=method.").get_json()["events"]:
        assert row["at"].endswith("Z") and row["ip"] == "192.0.2.81", row


def test_unknown_paths_and_methods(browser: Browser) -> None:
    assert api(browser, "GET", "/nothing").status_code == 404
    r = api(browser, "PATCH", "/users/alice/tap")
    assert r.status_code == 405 and set(r.headers["Allow"].split(", ")) >= {"GET", "POST", "DELETE"}


def test_a_body_with_a_lone_surrogate_is_refused_as_no_text(browser: Browser) -> None:
    # '"\ud800"' is valid JSON that parses to a str no encoder takes: refused with the body's
    # 400 before anything reads it, not a 500 from the store's or the CSV reader's encode.
    header = "upn,serial number,secret key,time interval,manufacturer,model\n"
    for content in [
        header + "\ud800@x.test,1,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,30,Acme,T1\n",
        "\udfff",
    ]:
        response = api(
            browser, "POST", "/hardware-tokens", json={"format": "csv", "content": content}
        )
        assert response.status_code == 400, response.get_data(as_text=True)
        assert "surrogate" in response.get_data(as_text=True), response.get_json()
