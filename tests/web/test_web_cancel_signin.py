"""'Cancel sign-in' on the MFA step and in the wizard (issue 16 item 7): the pending sign-in is
wiped and the relying party gets ``access_denied`` with its ``state`` at its registered redirect
URI (the host's ``error_response``); POST with CSRF; HTML and JSON twin."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from plain_wsgi_host import CLIENTS
from webtest import BLOCK_DEMO, Browser, code_from, location

RP = CLIENTS["demo"]


def rp_params(url: str) -> dict[str, list[str]]:
    assert url.startswith(RP + "?"), url
    return parse_qs(urlsplit(url).query)


def test_cancel_on_the_mfa_step_returns_access_denied_to_the_rp(browser: Browser) -> None:
    mfa_url, form = browser.at_mfa_with_totp("alice")
    page = browser.get_json(mfa_url).get_json()
    cancel = page["cancel_url"]
    assert cancel.startswith("/security-info/signin/cancel?c=")

    r = browser.post(cancel, data={"csrf_token": page["csrf_token"]})

    assert r.status_code == 302
    assert rp_params(location(r)) == {
        "error": ["access_denied"],
        "error_description": ["The user cancelled the sign-in."],
        "state": ["s1"],
    }
    assert "Max-Age=0" in r.headers["Set-Cookie"]  # the middleware's cookie is cleared
    # Wiped: the code of the MFA step verifies nothing any more, and /authorize starts over
    # at the host's login page.
    assert browser.post(mfa_url, data=form).status_code == 401
    again = browser.authorize()
    assert location(again).startswith("/login?next=") and code_from(again) is None
    events = browser.reg.store.list_audit(user_id="alice", event_prefix="signin.cancelled")
    assert len(events) == 1 and events[0].detail["client_id"] == "demo"


def test_cancel_needs_the_csrf_token_and_a_post(browser: Browser) -> None:
    mfa_url, _ = browser.at_mfa_with_totp("alice")
    cancel = browser.get_json(mfa_url).get_json()["cancel_url"]
    assert browser.post(cancel, data={"csrf_token": "forged"}).status_code == 403
    assert browser.post(cancel).status_code == 403
    got = browser.get(cancel)  # a link followed, a prefetch: nothing cancelled
    assert got.status_code == 303 and not location(got).startswith(RP)
    assert browser.get_json(mfa_url).get_json()["page"] == "mfa"


def test_cancel_in_the_wizard_by_the_json_twin(browser: Browser) -> None:
    browser.login("alice")
    wizard = location(browser.authorize())
    assert wizard.startswith("/security-info/wizard?c=")
    html = browser.get(wizard).get_data(as_text=True)
    assert 'class="cancel-signin"' in html and "Cancel sign-in" in html
    page = browser.get_json(wizard).get_json()
    r = browser.post_json(page["cancel_url"], {"csrf_token": page["csrf_token"]})
    assert r.status_code == 303
    assert rp_params(r.get_json()["redirect"])["error"] == ["access_denied"]
    assert browser.get_json(wizard).status_code == 401


def test_the_pages_show_a_cancel_form_inside_a_sign_in_only(browser: Browser) -> None:
    mfa_url, form = browser.at_mfa_with_totp("alice")
    html = browser.get(mfa_url).get_data(as_text=True)
    assert 'action="/security-info/signin/cancel?c=' in html and "Cancel sign-in" in html
    browser.post(mfa_url, data=form)
    browser.clock.advance(900)  # past mfa_freshness: the manage pages' MFA gate, no sign-in
    gate_url = location(browser.get("/security-info/"))
    assert gate_url.startswith("/security-info/mfa")
    gate = browser.get_json(gate_url).get_json()
    assert gate["page"] == "mfa" and gate["cancel_url"] is None


def test_a_tampered_continuation_cancels_nothing(browser: Browser) -> None:
    mfa_url, _ = browser.at_mfa_with_totp("alice")
    token = browser.get_json(mfa_url).get_json()["csrf_token"]
    r = browser.post("/security-info/signin/cancel?c=forged", data={"csrf_token": token})
    assert r.status_code >= 400 and not location(r).startswith(RP)
    assert browser.get_json(mfa_url).get_json()["page"] == "mfa"


def test_a_blocked_sign_in_offers_the_way_back_to_the_app(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(conditional_access=[BLOCK_DEMO])
    browser.login("alice")
    page = browser.get_json(location(browser.authorize()))
    body = page.get_json()
    assert page.status_code == 403 and body["page"] == "blocked"
    r = browser.post_json(body["cancel_url"], {"csrf_token": body["csrf_token"]})
    assert rp_params(r.get_json()["redirect"])["error"] == ["access_denied"]
