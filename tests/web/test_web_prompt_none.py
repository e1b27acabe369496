"""``prompt=none`` never shows a page (OIDC Core 3.1.2.1, 3.1.2.6; issue 17 item 1): whatever step is
pending, the relying party gets its error at its registered redirect URI, with ``state``, by GET
and by POST. Through the WSGI stack with the plain host (its ``error_response``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from plain_wsgi_host import CLIENTS, DictDirectory, Host
from reset_helpers import add_totp
from webtest import BLOCK_DEMO, Browser, base_config, code_from, location
from werkzeug.test import TestResponse

from oidc_combinedreg import CombinedRegistration, parse_config
from oidc_combinedreg.policy.reset import PASSWORD_RESET_REQUIRED

MFA = "urn:combinedreg:acr:mfa"
RP = CLIENTS["demo"]


def rp_error(r: TestResponse) -> dict[str, str]:
    """The error parameters of a redirect to the RP's registered redirect URI (else fails)."""
    assert r.status_code in (302, 303), (r.status_code, r.get_data(as_text=True)[:300])
    url = location(r)
    assert url.startswith(RP + "?"), url
    assert "code" not in parse_qs(urlsplit(url).query)
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def silent(browser: Browser, extra: str = "", *, post: bool = False, **kw: Any) -> TestResponse:
    query = f"client_id=demo&state=quiet&prompt=none{extra}"
    if post:
        return browser.post("/authorize", data=dict(parse_qs_flat(query)), **kw)
    return browser.get("/authorize?" + query, **kw)


def parse_qs_flat(query: str) -> list[tuple[str, str]]:
    return [(k, v[0]) for k, v in parse_qs(query).items()]


def with_totp(browser: Browser) -> None:
    """alice registers an authenticator app in a first sign-in, then signs in again (password
    only: the MFA step is pending)."""
    browser.at_mfa_with_totp("alice")


@pytest.mark.parametrize("post", [False, True], ids=["by GET", "by POST"])
def test_nobody_signed_in_gets_login_required_at_the_rp(browser: Browser, post: bool) -> None:
    assert rp_error(silent(browser, post=post)) == {
        "error": "login_required",
        "error_description": "The user is not signed in.",
        "state": "quiet",
    }


def test_a_browser_without_our_cookie_is_not_probed_under_prompt_none(browser: Browser) -> None:
    """The cookie check would show its page if cookies are off: under prompt=none, the RP
    hears login_required at once instead (a navigation that would otherwise be probed)."""
    navigate = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    assert rp_error(silent(browser, headers=navigate))["error"] == "login_required"
    probed = browser.get("/authorize?client_id=demo&state=s", headers=navigate)
    assert location(probed).startswith("/security-info/signin?c="), "probed without prompt"


@pytest.mark.parametrize("post", [False, True], ids=["by GET", "by POST"])
def test_a_pending_mfa_step_is_login_required_not_the_verify_page(
    browser: Browser, post: bool
) -> None:
    """Issue 17.1's case: a password-only session, prompt=none and acr_values for MFA."""
    with_totp(browser)
    r = silent(browser, f"&acr_values={MFA}", post=post)
    assert rp_error(r) == {
        "error": "login_required",
        "error_description": "The sign-in needs a second factor.",
        "state": "quiet",
    }
    # Nothing was left pending for it, and the same request interactively gets the MFA step.
    r = browser.authorize(f"client_id=demo&state=s&acr_values={MFA}")
    assert location(r).startswith("/security-info/mfa?c=")


def test_the_registration_wizard_pending_is_interaction_required(browser: Browser) -> None:
    browser.login("alice")  # no method yet, MFA registration enforced: the wizard is next
    assert rp_error(silent(browser))["error"] == "interaction_required"


def test_a_conditional_access_block_is_interaction_required(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(conditional_access=[BLOCK_DEMO])
    browser.login("alice")
    assert rp_error(silent(browser))["error"] == "interaction_required"


def test_prompt_none_with_another_value_is_an_invalid_request(browser: Browser) -> None:
    r = browser.get("/authorize?client_id=demo&state=x&prompt=none%20login")
    assert rp_error(r)["error"] == "invalid_request"


def test_a_cleared_sign_in_under_prompt_none_gets_its_code(browser: Browser) -> None:
    """prompt=none does not stop what needs no page: an MFA session gets its code silently."""
    mfa_url, form = browser.at_mfa_with_totp("alice")
    browser.post(mfa_url, data=form)
    r = silent(browser, f"&acr_values={MFA}")
    assert code_from(r) is not None
    assert parse_qs(urlsplit(location(r)).query)["state"] == ["quiet"]


def test_an_unregistered_redirect_uri_gets_a_page_never_a_redirect(browser: Browser) -> None:
    r = silent(browser, "&redirect_uri=https://evil.example/cb")
    assert r.status_code == 400
    assert "Location" not in r.headers


def test_a_host_without_an_authorization_endpoint_does_not_start(tmp_path: Path) -> None:
    config = parse_config(base_config(tmp_path))
    with pytest.raises(TypeError, match=r"authorization=.*error_response.*docs/integration.md"):
        CombinedRegistration(Host(), config=config, directory=DictDirectory())


def test_an_endpoint_missing_a_method_is_named_at_start_up(tmp_path: Path) -> None:
    class Half:
        def error_response(self, *args: Any) -> Any:
            raise NotImplementedError

    config = parse_config(base_config(tmp_path))
    with pytest.raises(TypeError, match="Half lacks effective_params"):
        CombinedRegistration(Host(), config=config, directory=DictDirectory(), authorization=Half())


def test_a_forced_password_reset_is_interaction_required_not_the_reset_page(
    browser: Browser,
) -> None:
    """ "This wasn't me" flagged the account: interactively the sign-in goes to the reset page;
    silently the RP hears interaction_required."""
    browser.login("alice")
    state = browser.reg.store.get_user_state("alice")
    browser.reg.store.put_user_state(replace(state, extra={PASSWORD_RESET_REQUIRED: True}))
    assert rp_error(silent(browser))["error"] == "interaction_required"
    r = browser.authorize()
    assert location(r) == "/security-info/reset"


def test_a_reconfirmation_due_is_interaction_required(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(
        policies={
            "mfa_registration": {"enforced": False},
            "sspr": {"enabled_for": "all", "methods_required": 1, "reconfirm_days": 30},
        }
    )
    add_totp(browser.reg, "alice")
    browser.clock.advance(31 * 86400)
    browser.login("alice")
    assert rp_error(silent(browser))["error"] == "interaction_required"
    r = browser.authorize()
    wizard = location(r)
    assert wizard.startswith("/security-info/wizard?c=")
    # Re-confirm lists the methods, behind the MFA gate like manage mode.
    assert browser.get_json(wizard).get_json()["redirect"].startswith("/security-info/mfa?c=")
