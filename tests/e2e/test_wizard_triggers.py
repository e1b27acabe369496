"""Each registration trigger with its demo account, through the example IdP over HTTP (issue 5)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urljoin

import pytest
import requests
from conftest import IdpServer, serve_example_idp
from oic.oic import Client
from oic.utils.authn.client import CLIENT_AUTHN_METHOD
from test_oidc_provider import LOGOUT_URI, REDIRECT_URI, Rp, _field

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def new_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdpServer]:
    """Its own server: every account must be at its first sign-in, whatever other tests of the
    session did with the shared one (test_oidc_mfa registers an app for alice)."""
    with serve_example_idp(tmp_path_factory.mktemp("example-idp-triggers")) as server:
        yield server


@pytest.fixture
def rp(new_idp: IdpServer) -> Rp:
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    client.provider_config(new_idp.url)
    client.register(
        client.provider_info["registration_endpoint"],
        redirect_uris=[REDIRECT_URI],
        post_logout_redirect_uris=[LOGOUT_URI],
    )
    return Rp(idp=new_idp, client=client)


def _first_page_after_password(rp: Rp, user: str) -> requests.Response:
    url, _, _ = rp.authorize_url()
    page = rp.follow(url)
    form = {
        "username": user,
        "password": user,
        "csrf_token": _field(page.text, "csrf_token"),
        "next": _field(page.text, "next"),
    }
    response = rp.browser.post(urljoin(page.url, "/login"), data=form, allow_redirects=False)
    return rp.follow(urljoin(page.url, response.headers["Location"]))


@pytest.mark.parametrize(
    ("user", "needs", "heading"),
    [
        pytest.param(
            "carol",
            ["per_user_mfa_enforced"],
            "Keep your account secure",
            id="carol: per-user MFA enforced",
        ),
        pytest.param(
            "dave",
            ["sspr_registration"],
            "Keep your account secure",
            id="dave: password reset registration only",
        ),
        pytest.param(
            "erin",
            ["mfa_registration_enforced", "sspr_registration"],
            "Additional security verification",
            id="erin: legacy mode, MFA part first",
        ),
        pytest.param(
            "frank",
            ["conditional_access_mfa"],
            "Keep your account secure",
            id="frank: Conditional Access requires MFA for the app, alone",
        ),
        pytest.param(
            "grace",
            ["mfa_registration_enforced"],
            "Keep your account secure",
            id="grace: the MFA registration policy alone",
        ),
        pytest.param(
            "alice",
            ["mfa_registration_enforced", "sspr_registration"],
            "Keep your account secure",
            id="alice: MFA and password reset registered together",
        ),
    ],
)
def test_demo_accounts_hit_their_trigger(rp: Rp, user: str, needs: list[str], heading: str) -> None:
    page = _first_page_after_password(rp, user)
    assert "/security-info/wizard" in page.url, page.url
    assert heading in page.text
    twin = rp.browser.get(page.url, headers={"Accept": "application/json"}).json()
    assert twin["needs"] == needs
    assert twin["progress"]["current"] == 1
