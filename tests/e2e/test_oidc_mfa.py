"""A newcomer's first two sign-ins through the example IdP, driven by the independent ``oic`` RP.

First sign-in: password, then the interrupt wizard (the HTML pages, as a browser without JavaScript
sees them): the demo proposes its authenticator web app, alice chooses "a different method", an
authenticator app of her own, then answers security questions (a password reset takes two methods);
the ID token says pwd + otp + mfa. Second sign-in: the MFA step asks for a code instead of
registering again.
"""

from __future__ import annotations

import html
import re
import time
from urllib.parse import parse_qsl, urljoin

import pyotp
import pytest
import requests
from oic.oic import Client
from oic.utils.authn.client import CLIENT_AUTHN_METHOD
from test_oidc_provider import LOGOUT_URI, REDIRECT_URI, Rp, _callback, _field

pytestmark = pytest.mark.e2e

USER = "alice"
ANSWERS = ("amsterdam harbour", "blue bicycle", "grandma rosa")


@pytest.fixture
def alice(idp_server):  # type: ignore[no-untyped-def]
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    client.provider_config(idp_server.url)
    client.register(
        client.provider_info["registration_endpoint"],
        redirect_uris=[REDIRECT_URI],
        post_logout_redirect_uris=[LOGOUT_URI],
    )
    return Rp(idp=idp_server, client=client)


def _login(rp: Rp, page: requests.Response) -> requests.Response:
    assert 'name="password"' in page.text, page.text[:300]
    form = {
        "username": USER,
        "password": USER,
        "csrf_token": _field(page.text, "csrf_token"),
        "next": _field(page.text, "next"),
    }
    response = rp.browser.post(urljoin(page.url, "/login"), data=form, allow_redirects=False)
    assert response.status_code == 302, response.text[:300]
    return rp.follow(urljoin(page.url, response.headers["Location"]))


def _post(rp: Rp, page: requests.Response, **fields: str) -> requests.Response:
    """Submit the page's form (same URL) with its CSRF token, then follow redirects."""
    data = {"csrf_token": _field(page.text, "csrf_token"), **fields}
    response = rp.browser.post(page.url, data=data, allow_redirects=False)
    if response.status_code in (302, 303):
        return rp.follow(urljoin(page.url, response.headers["Location"]))
    return response


def _choose_another(rp: Rp, page: requests.Response, kind: str) -> requests.Response:
    """ "I want to set up a different method", then the kind's radio button and "Confirm"."""
    link = re.search(
        r'<a href="(\?c=[^"]*choose=1)">I want to set up a different method</a>', page.text
    )
    assert link is not None, page.text[:300]
    choose = rp.follow(urljoin(page.url, html.unescape(link[1])))
    assert f'name="kind" value="{kind}"' in choose.text, choose.text[:500]
    return _post(rp, choose, action="choose", kind=kind)


def _code(secret: str, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def test_register_an_app_at_first_sign_in_then_mfa_at_the_next(alice: Rp) -> None:
    rp = alice
    url, state, verifier = rp.authorize_url()
    proposed = _login(rp, rp.follow(url))
    # The demo proposes its authenticator web app first; alice takes an app of her own instead.
    assert (
        "/security-info/wizard" in proposed.url
        and "On your phone, install Contoso" in proposed.text
    )
    wizard = _choose_another(rp, proposed, "totp")
    assert "Start by getting the app" in wizard.text and "Microsoft Authenticator" in wizard.text
    setup = _post(rp, wizard, action="next")
    assert setup.status_code == 200, re.findall(r"<h1>.*</h1>", setup.text)
    assert "Set up your account" in setup.text and "<svg" in setup.text
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', setup.text)
    assert secret is not None
    verify = _post(rp, setup, action="next")
    assert "Let&#39;s try it out" in verify.text or "Let's try it out" in verify.text
    wrong = _post(
        rp, verify, action="verify", code="000000" if _code(secret[1]) != "000000" else "1"
    )
    assert wrong.status_code == 400 and 'aria-invalid="true"' in wrong.text
    added = _post(rp, verify, action="verify", code=_code(secret[1]))
    assert "successfully registered" in added.text
    # A password reset takes two methods here: her questions are the second.
    questions = _post(rp, added, action="next")
    assert "Choose and answer 3 questions" in questions.text, questions.text[:300]
    # The questions preselected in the form (a browser posts them), and an answer to each.
    chosen = re.findall(r'<option value="([^"]+)" selected>', questions.text)
    assert len(chosen) == 3, chosen
    answers = {f"question{i}": html.unescape(q) for i, q in enumerate(chosen)}
    answers |= {f"answer{i}": a for i, a in enumerate(ANSWERS)}
    done = _post(rp, questions, action="next", **answers)
    assert "successfully registered" in done.text
    summary = _post(rp, done, action="next")
    assert "Success!" in summary.text and "Authenticator app" in summary.text
    assert "Security questions" in summary.text
    callback = _post(rp, summary, action="finish")
    tokens = rp.exchange(_callback(callback), state, verifier)
    claims = tokens["id_token"]  # verified by oic against the JWKS
    assert {"pwd", "otp", "mfa"} <= set(claims["amr"])
    assert claims["acr"] == "urn:combinedreg:acr:mfa"
    assert claims["sub"] == USER

    # Next sign-in (a fresh browser): the code from the app, not the wizard.
    rp.browser = requests.Session()
    url, state, verifier = rp.authorize_url(prompt="login")
    mfa = _login(rp, rp.follow(url))
    assert "/security-info/mfa" in mfa.url and "Verify your identity" in mfa.text
    callback = _post(
        rp, mfa, action="verify", method_id=_field(mfa.text, "method_id"), code=_code(secret[1], 1)
    )
    claims = rp.exchange(_callback(callback), state, verifier)["id_token"]
    assert {"pwd", "otp", "mfa"} <= set(claims["amr"])

    # The same browser, a request by POST (OIDC Core 3.1.2.1): the middleware reads the body to
    # decide (MFA is done in this session) and puts it back, so Authlib reads it too.
    url, state, verifier = rp.authorize_url(acr_values="urn:combinedreg:acr:mfa")
    endpoint, _, query = url.partition("?")
    posted = rp.browser.post(endpoint, data=parse_qsl(query), allow_redirects=False)
    claims = rp.exchange(_callback(posted), state, verifier)["id_token"]
    assert claims["acr"] == "urn:combinedreg:acr:mfa" and claims["nonce"] == rp.nonces[state]
