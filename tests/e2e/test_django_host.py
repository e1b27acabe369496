"""The Django example host (examples/django_host/) end to end, over HTTP, with the ``oic`` RP.

Django serves the login page and sessions, django-oauth-toolkit is the OpenID provider, and
oidc-combinedreg is mounted around Django's WSGI application. First sign-in: password, then the
wizard registers an authenticator app; the ID token (made by django-oauth-toolkit, verified by oic
against its JWKS) says pwd + otp + mfa and the MFA acr. After logout, the next sign-in asks for a
code from the app.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from oic.oic import Client
from oic.utils.authn.client import CLIENT_AUTHN_METHOD
from test_oidc_mfa import _code, _post
from test_oidc_provider import REDIRECT_URI, Rp, _callback
from werkzeug.serving import make_server

pytestmark = pytest.mark.e2e

USER, PASSWORD = "alice", "correct horse battery staple"
MFA_ACR = "urn:combinedreg:acr:mfa"


@pytest.fixture(scope="module")
def django_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """The example served in a thread: (issuer, client_id, client_secret)."""
    pytest.importorskip("django")
    from django.conf import settings

    if settings.configured:  # Django's settings are per process: one host per test run
        pytest.skip("Django is already configured in this process")
    from django_host.wsgi import make_application

    data = tmp_path_factory.mktemp("django-host")
    client_id, client_secret = secrets.token_urlsafe(16), secrets.token_urlsafe(32)

    def set_up() -> Any:
        app = make_application(data)
        from django.contrib.auth import get_user_model
        from oauth2_provider.models import get_application_model

        get_user_model().objects.create_user(USER, email="alice@example.test", password=PASSWORD)
        get_application_model().objects.create(
            name="RP",
            client_id=client_id,
            client_secret=client_secret,  # hashed when saved
            client_type="confidential",
            authorization_grant_type="authorization-code",
            redirect_uris=REDIRECT_URI,
            algorithm="RS256",
            skip_authorization=True,  # a first-party client: no consent page
        )
        return app

    # In another thread, as a server would: once a browser test ran in this process, Playwright's
    # sync API keeps an event loop running in the main thread, and Django refuses ORM calls there.
    with ThreadPoolExecutor(max_workers=1) as pool:
        app = pool.submit(set_up).result()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="django-host", daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_port}/o", client_id, client_secret
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def rp(django_host: tuple[str, str, str]) -> Rp:
    issuer, client_id, client_secret = django_host
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    client.provider_config(issuer)  # django-oauth-toolkit's discovery; oic checks the issuer
    client.client_id, client.client_secret = client_id, client_secret
    client.redirect_uris = [REDIRECT_URI]
    return Rp(idp=None, client=client)  # type: ignore[arg-type]


def _login(rp: Rp, page: requests.Response) -> requests.Response:
    """Django's login form (its CSRF token, ``next``), then follow the redirects."""
    assert urlsplit(page.url).path == "/login/" and 'name="password"' in page.text, page.url
    form = {
        "csrfmiddlewaretoken": rp.browser.cookies["csrftoken"],
        "username": USER,
        "password": PASSWORD,
        "next": parse_qs(urlsplit(page.url).query)["next"][0],
    }
    response = rp.browser.post(page.url, data=form, allow_redirects=False)
    assert response.status_code == 302, response.text[:300]
    return rp.follow(urljoin(page.url, response.headers["Location"]))


def test_wizard_at_first_sign_in_then_mfa_after_logout(rp: Rp) -> None:
    url, state, verifier = rp.authorize_url()
    wizard = _login(rp, rp.follow(url))
    assert urlsplit(wizard.url).path.startswith("/security-info/wizard"), wizard.url
    setup = _post(rp, wizard, action="next")
    secret = setup.text.split('<code class="secret">', 1)[1].split("</code>", 1)[0]
    verify = _post(rp, setup, action="next")
    added = _post(rp, verify, action="verify", code=_code(secret))
    summary = _post(rp, added, action="next")
    assert "Success!" in summary.text
    callback = _post(rp, summary, action="finish")
    claims = rp.exchange(_callback(callback), state, verifier)["id_token"]  # verified by oic
    assert {"pwd", "otp", "mfa"} <= set(claims["amr"])
    assert claims["acr"] == MFA_ACR
    assert isinstance(claims["auth_time"], int) and claims["nonce"] == rp.nonces[state]

    # Logout ends both sessions (Django's and the middleware's): the next request signs in again,
    # and this time the MFA step asks for a code from the registered app.
    signed_out = rp.browser.post(
        urljoin(url, "/logout/"),
        data={"csrfmiddlewaretoken": rp.browser.cookies["csrftoken"]},
        allow_redirects=False,
    )
    assert signed_out.status_code == 200, signed_out.text[:300]
    url, state, verifier = rp.authorize_url()
    mfa = _login(rp, rp.follow(url))
    assert urlsplit(mfa.url).path.startswith("/security-info/mfa"), mfa.url
    method_id = mfa.text.split('name="method_id" value="', 1)[1].split('"', 1)[0]
    callback = _post(rp, mfa, action="verify", method_id=method_id, code=_code(secret, 1))
    claims = rp.exchange(_callback(callback), state, verifier)["id_token"]
    assert {"pwd", "otp", "mfa"} <= set(claims["amr"])
    assert claims["acr"] == MFA_ACR


def test_prompt_none_without_a_sign_in_is_login_required_at_the_rp(rp: Rp) -> None:
    url, state, _ = rp.authorize_url(prompt="none")
    answer = rp.follow(url)
    query = _callback(answer)  # at the client's redirect URI, never a page
    assert query["error"] == ["login_required"] and query["state"] == [state]


def test_error_for_an_unregistered_redirect_uri_is_a_page_not_a_redirect(rp: Rp) -> None:
    url, _, _ = rp.authorize_url(prompt="none", redirect_uri="https://attacker.example/cb")
    answer = rp.follow(url)
    assert answer.status_code == 400 and "Location" not in answer.headers
