"""The example IdP as an OpenID Provider, driven over HTTP by the independent ``oic`` RP library.

The browser is a ``requests.Session`` that posts the real login form; the user is ``breakglass``,
whom the middleware's policies exclude from enforcement (plain password sign-in).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, parse_qsl, urlencode, urljoin, urlsplit

import pytest
import requests
from oic.oic import Client
from oic.oic.message import AccessTokenResponse, AuthorizationResponse, OpenIDSchema
from oic.utils.authn.client import CLIENT_AUTHN_METHOD

if TYPE_CHECKING:
    from conftest import IdpServer  # tests/e2e/conftest.py (pytest puts its folder on sys.path)

pytestmark = pytest.mark.e2e

REDIRECT_URI = "https://rp.example/callback"
LOGOUT_URI = "https://rp.example/signed-out"
USER = "breakglass"


@dataclass
class Rp:
    """An oic client registered at the IdP, and a browser (cookie jar) for the user."""

    idp: IdpServer
    client: Client
    browser: requests.Session = field(default_factory=requests.Session)
    #: the nonce sent with each authorization request, by state
    nonces: dict[str, str] = field(default_factory=dict)

    def authorize_url(self, *, pkce: bool = True, **extra: str) -> tuple[str, str, str | None]:
        """(URL, state, code_verifier) of a new authorization request with a fresh nonce."""
        state = secrets.token_urlsafe(16)
        self.nonces[state] = secrets.token_urlsafe(16)  # fresh each time: nonces are single use
        args: dict[str, object] = {
            "client_id": self.client.client_id,
            "response_type": "code",
            "scope": ["openid", "profile", "email"],
            "redirect_uri": REDIRECT_URI,
            "state": state,
            "nonce": self.nonces[state],
        }
        verifier = None
        if pkce:
            challenge, verifier = self.client.add_code_challenge()
            args.update(challenge)
        args.update(extra)
        request = self.client.construct_AuthorizationRequest(request_args=args)
        return request.request(self.client.provider_info["authorization_endpoint"]), state, verifier

    def follow(self, url: str, max_hops: int = 10) -> requests.Response:
        """Follow redirects inside the IdP; stop at the RP's redirect URI or at a page."""
        response = self.browser.get(url, allow_redirects=False)
        for _ in range(max_hops):
            location = response.headers.get("Location")
            if response.status_code not in (301, 302, 303) or location is None:
                return response
            if location.startswith(("https://rp.example/",)):
                return response
            response = self.browser.get(urljoin(response.url, location), allow_redirects=False)
        raise AssertionError("too many redirects")

    def submit_login(self, page: requests.Response, password: str = USER) -> requests.Response:
        assert page.status_code == 200 and 'name="password"' in page.text, page.text[:300]
        form = {
            "username": USER,
            "password": password,
            "csrf_token": _field(page.text, "csrf_token"),
            "next": _field(page.text, "next"),
        }
        response = self.browser.post(urljoin(page.url, "/login"), data=form, allow_redirects=False)
        assert response.status_code == 302, response.text[:300]
        return self.follow(urljoin(page.url, response.headers["Location"]))

    def sign_in(self, **extra: str) -> tuple[dict[str, list[str]], str, str | None]:
        """A full authorization request with a password sign-in: (callback query, state, verifier)."""
        url, state, verifier = self.authorize_url(**extra)
        response = self.submit_login(self.follow(url))
        return _callback(response), state, verifier

    def exchange(
        self, query: dict[str, list[str]], state: str, verifier: str | None
    ) -> AccessTokenResponse:
        self.client.parse_response(
            AuthorizationResponse, info=urlencode(query, doseq=True), sformat="urlencoded"
        )
        args = {"code": query["code"][0], "redirect_uri": REDIRECT_URI}
        if verifier:
            args["code_verifier"] = verifier
        return self.client.do_access_token_request(
            state=state, request_args=args, authn_method="client_secret_basic"
        )


def _field(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} field in the page"
    return match.group(1).replace("&amp;", "&")


def _callback(response: requests.Response) -> dict[str, list[str]]:
    assert response.status_code in (302, 303), response.text[:300]
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI), location
    return parse_qs(urlsplit(location).query)


def _jwt_part(token: str, index: int) -> dict[str, object]:
    part = token.split(".")[index]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


@pytest.fixture
def rp(idp_server: IdpServer) -> Rp:
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    client.provider_config(idp_server.url)  # discovery; oic checks the issuer byte for byte
    client.register(
        client.provider_info["registration_endpoint"],
        redirect_uris=[REDIRECT_URI],
        post_logout_redirect_uris=[LOGOUT_URI],
    )
    return Rp(idp=idp_server, client=client)


def test_code_flow_with_pkce_nonce_and_userinfo(rp: Rp) -> None:
    query, state, verifier = rp.sign_in()
    tokens = rp.exchange(query, state, verifier)

    # oic verified the ID token's signature against the JWKS, its issuer, audience and nonce.
    id_token = tokens["id_token"]
    assert id_token["sub"] == USER
    assert id_token["iss"] == rp.idp.url
    assert rp.client.client_id in id_token["aud"]
    assert "pwd" in id_token["amr"]
    assert isinstance(id_token["auth_time"], int)
    assert id_token["nonce"] == rp.nonces[state]

    userinfo = rp.client.do_user_info_request(state=state)
    assert isinstance(userinfo, OpenIDSchema)
    assert userinfo["sub"] == USER
    assert userinfo["email"] == "breakglass@example.test"


def test_id_token_header_names_the_jwks_key(rp: Rp) -> None:
    query, state, verifier = rp.sign_in()
    raw = rp.exchange(query, state, verifier)["id_token"].jwt
    jwks = requests.get(rp.client.provider_info["jwks_uri"], timeout=10).json()
    header = _jwt_part(raw, 0)
    assert header["alg"] == "RS256"
    assert header["kid"] in [key["kid"] for key in jwks["keys"]]


def test_userinfo_accepts_the_token_in_header_and_in_a_posted_form(rp: Rp) -> None:
    query, state, verifier = rp.sign_in()
    access_token = rp.exchange(query, state, verifier)["access_token"]
    endpoint = rp.client.provider_info["userinfo_endpoint"]

    by_header = requests.get(
        endpoint, headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    )
    by_form = requests.post(endpoint, data={"access_token": access_token}, timeout=10)
    without = requests.post(endpoint, data={"access_token": "not-a-token"}, timeout=10)

    assert by_header.status_code == by_form.status_code == 200
    assert by_header.json()["sub"] == by_form.json()["sub"] == USER
    assert without.status_code == 401


def test_reused_code_is_refused_and_revokes_its_tokens(rp: Rp) -> None:
    query, state, verifier = rp.sign_in()
    first = rp.exchange(query, state, verifier)
    token_endpoint = rp.client.provider_info["token_endpoint"]
    again = requests.post(
        token_endpoint,
        data={"grant_type": "authorization_code", "code": query["code"][0],
              "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
        auth=(rp.client.client_id, rp.client.client_secret),
        timeout=10,
    )  # fmt: skip
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    userinfo = requests.get(
        rp.client.provider_info["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {first['access_token']}"},
        timeout=10,
    )
    assert userinfo.status_code == 401


def test_wrong_pkce_verifier_is_refused(rp: Rp) -> None:
    query, _, verifier = rp.sign_in()
    assert verifier is not None
    response = requests.post(
        rp.client.provider_info["token_endpoint"],
        data={"grant_type": "authorization_code", "code": query["code"][0],
              "redirect_uri": REDIRECT_URI, "code_verifier": verifier[::-1]},
        auth=(rp.client.client_id, rp.client.client_secret),
        timeout=10,
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_unregistered_redirect_uri_is_refused_without_redirecting(rp: Rp) -> None:
    url, _, _ = rp.authorize_url(redirect_uri="https://attacker.example/callback")
    response = rp.browser.get(url, allow_redirects=False)
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_prompt_none_without_a_session_answers_login_required(rp: Rp) -> None:
    url, state, _ = rp.authorize_url(prompt="none")
    query = _callback(rp.browser.get(url, allow_redirects=False))
    assert query["error"] == ["login_required"]
    assert query["state"] == [state]
    assert "code" not in query


def test_a_signed_in_user_gets_a_code_without_the_password(rp: Rp) -> None:
    rp.sign_in()
    url, _, _ = rp.authorize_url()
    query = _callback(rp.follow(url))
    assert "code" in query


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"prompt": "login"}, id="prompt=login asks for the password again"),
        pytest.param({"max_age": "0"}, id="max_age=0 asks for the password again"),
    ],
)
def test_reauthentication_is_forced_for_a_signed_in_user(rp: Rp, extra: dict[str, str]) -> None:
    rp.sign_in()
    url, state, verifier = rp.authorize_url(**extra)
    page = rp.follow(url)
    assert 'name="password"' in page.text  # the login form, although a session exists
    query = _callback(rp.submit_login(page))  # once the password is given: no loop
    tokens = rp.exchange(query, state, verifier)
    assert tokens["id_token"]["sub"] == USER


def post_authorization_request(rp: Rp, **extra: str) -> tuple[requests.Response, str, str | None]:
    """The RP's authorization request form-serialized in a POST body (OIDC Core 3.1.2.1), as an
    auto-submitting form sends it: (the IdP's answer, followed, state, verifier)."""
    url, state, verifier = rp.authorize_url(**extra)
    endpoint, _, query = url.partition("?")
    response = rp.browser.post(endpoint, data=parse_qsl(query), allow_redirects=False)
    if response.status_code == 200:  # the sign-in form, at the endpoint itself (decision 217)
        return response, state, verifier
    assert response.status_code in (302, 303), response.text[:300]
    return rp.follow(urljoin(endpoint, response.headers["Location"])), state, verifier


def test_an_authorization_request_by_post_signs_in_and_gets_tokens(rp: Rp) -> None:
    page, state, verifier = post_authorization_request(rp)
    # The login form, then back to the request as a GET with every parameter of the POST.
    tokens = rp.exchange(_callback(rp.submit_login(page)), state, verifier)
    assert tokens["id_token"]["sub"] == USER
    assert tokens["id_token"]["nonce"] == rp.nonces[state]


def test_prompt_login_by_post_asks_for_the_password_once(rp: Rp) -> None:
    rp.sign_in()
    page, state, verifier = post_authorization_request(rp, prompt="login")
    assert 'name="password"' in page.text  # although a session exists
    query = _callback(rp.submit_login(page))  # the GET it comes back as is the same request
    assert rp.exchange(query, state, verifier)["id_token"]["sub"] == USER


def test_prompt_none_with_an_expired_max_age_answers_login_required(rp: Rp) -> None:
    rp.sign_in()
    url, _, _ = rp.authorize_url(prompt="none", max_age="0")
    query = _callback(rp.follow(url))
    assert query["error"] == ["login_required"]


def test_end_session_with_id_token_hint_redirects_and_signs_out(rp: Rp) -> None:
    query, state, verifier = rp.sign_in()
    id_token = rp.exchange(query, state, verifier)["id_token"].jwt
    response = rp.browser.get(
        rp.client.provider_info["end_session_endpoint"],
        params={"id_token_hint": id_token, "post_logout_redirect_uri": LOGOUT_URI, "state": "bye"},
        allow_redirects=False,
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"{LOGOUT_URI}?state=bye"
    url, _, _ = rp.authorize_url(prompt="none")
    assert _callback(rp.follow(url))["error"] == ["login_required"]


@pytest.mark.parametrize(
    "redirect_uris",
    [
        pytest.param(["https://rp.example/cb#fragment"], id="a fragment"),
        pytest.param(["/relative/callback"], id="a relative path"),
        pytest.param([], id="an empty list"),
        pytest.param("https://rp.example/cb", id="a string instead of a list"),
    ],
)
def test_registration_with_a_bad_redirect_uri_answers_invalid_redirect_uri(
    idp_server: IdpServer, redirect_uris: object
) -> None:
    response = requests.post(
        f"{idp_server.url}/register", json={"redirect_uris": redirect_uris}, timeout=10
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"


def test_public_client_must_use_pkce_s256(idp_server: IdpServer) -> None:
    registered = requests.post(
        f"{idp_server.url}/register",
        json={"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"},
        timeout=10,
    ).json()
    assert "client_secret" not in registered
    base = {"client_id": registered["client_id"], "response_type": "code", "scope": "openid",
            "redirect_uri": REDIRECT_URI, "state": "s"}  # fmt: skip
    plain = dict(base, code_challenge="a" * 43, code_challenge_method="plain")
    for params in (base, plain):
        response = requests.get(
            f"{idp_server.url}/authorize", params=params, allow_redirects=False, timeout=10
        )
        assert parse_qs(urlsplit(response.headers["Location"]).query)["error"] == [
            "invalid_request"
        ]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"csrf_token": None}, id="no csrf token"),
        pytest.param({"csrf_token": "0" * 64}, id="a forged csrf token"),
        pytest.param({"Sec-Fetch-Site": "cross-site"}, id="a cross-site post"),
    ],
)
def test_login_without_a_valid_csrf_token_is_refused(rp: Rp, tamper: dict[str, str | None]) -> None:
    url, _, _ = rp.authorize_url()
    page = rp.follow(url)
    form = {"username": USER, "password": USER, "csrf_token": _field(page.text, "csrf_token"),
            "next": _field(page.text, "next")}  # fmt: skip
    headers = {}
    for key, value in tamper.items():
        if key in form:
            form[key] = value  # type: ignore[assignment]
        else:
            headers[key] = str(value)
    response = rp.browser.post(
        urljoin(page.url, "/login"),
        data={k: v for k, v in form.items() if v is not None},
        headers=headers,
        allow_redirects=False,
    )
    assert response.status_code == 400
    # Still not signed in: the next authorization request with prompt=none fails.
    url, _, _ = rp.authorize_url(prompt="none")
    assert _callback(rp.follow(url))["error"] == ["login_required"]


def test_failed_logins_are_throttled(idp_server: IdpServer) -> None:
    browser = requests.Session()
    page = browser.get(f"{idp_server.url}/login", timeout=10)
    username = f"nobody-{secrets.token_hex(4)}"  # its own counter: other tests keep signing in
    form = {
        "username": username,
        "password": "wrong",
        "csrf_token": _field(page.text, "csrf_token"),
    }
    statuses = [
        browser.post(f"{idp_server.url}/login", data=form, timeout=10).status_code for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]
