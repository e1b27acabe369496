"""An authorization request by POST (OpenID Connect Core 3.1.2.1: form-serialized in the body, the
same meaning as by GET): the guard decides on its parameters, brings the browser back to its GET
equivalent after MFA, passes a POST it clears at once to the host with its body intact, and
refuses a body too large to read."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pyotp
from reset_helpers import add_totp
from webtest import Browser, code_from, location

from oidc_combinedreg.web.context import MAX_BODY

BODY = {"client_id": "demo", "state": "posted", "acr_values": "urn:combinedreg:acr:mfa"}


def registered(browser: Browser) -> str:
    """Alice has an authenticator app, registered two minutes ago; returns its secret."""
    secret = add_totp(browser.reg, "alice")
    browser.clock.advance(120)
    return secret


def test_a_posted_request_comes_back_as_its_get_equivalent_after_mfa(browser: Browser) -> None:
    secret = registered(browser)
    browser.login("alice")

    r = browser.post("/authorize?prompt=login", data=BODY)

    assert r.status_code == 303 and browser.host.codes == {}
    mfa = location(r)
    assert mfa.startswith("/security-info/mfa?c=")
    page = browser.get_json(mfa).get_json()
    r = browser.post(mfa, data={"method_id": page["method"]["id"], "csrf_token": page["csrf_token"],
                                "code": pyotp.TOTP(secret).at(browser.clock.now())})  # fmt: skip
    url = urlsplit(location(r))
    # The URL's parameters first, then the body's: what Authlib reads from the POST, as a GET.
    assert url.path == "/authorize"
    assert parse_qsl(url.query) == [("prompt", "login"), *BODY.items()]
    issued = browser.get(location(r))
    code = code_from(issued)
    assert code is not None
    assert parse_qs(urlsplit(location(issued)).query)["state"] == ["posted"]
    assert browser.host.codes[code]["acr"] == "urn:combinedreg:acr:mfa"


def test_the_acr_values_of_a_posted_request_are_honoured(
    make_browser: Callable[..., Browser],
) -> None:
    """No policy asks this sign-in for MFA; the POSTed request's ``acr_values`` does."""
    browser = make_browser(policies={"mfa_registration": {"enforced": False}})
    registered(browser)
    browser.login("alice")
    plain = browser.post("/authorize", data={"client_id": "demo", "state": "s"})
    assert code_from(plain) is not None, "without acr_values: the code at once"

    browser.login("alice")
    r = browser.post("/authorize", data=BODY)

    assert r.status_code == 303
    assert location(r).startswith("/security-info/mfa?c=")
    assert len(browser.host.codes) == 1


def test_a_post_cleared_at_once_reaches_the_host_with_its_body(browser: Browser) -> None:
    secret = registered(browser)
    browser.login("alice")
    mfa = location(browser.authorize())
    page = browser.get_json(mfa).get_json()
    r = browser.post(mfa, data={"method_id": page["method"]["id"], "csrf_token": page["csrf_token"],
                                "code": pyotp.TOTP(secret).at(browser.clock.now())})  # fmt: skip
    assert code_from(browser.get(location(r))) is not None  # the GET request's code

    r = browser.post("/authorize", data={"client_id": "demo", "state": "again"})

    assert r.status_code == 302
    code = code_from(r)
    assert code is not None and browser.host.codes[code]["acr"] == "urn:combinedreg:acr:mfa"
    assert parse_qs(urlsplit(location(r)).query)["state"] == ["again"]


def test_a_posted_body_too_large_to_read_is_refused(browser: Browser) -> None:
    registered(browser)
    browser.login("alice")

    r = browser.post("/authorize", data={"client_id": "demo", "request": "x" * MAX_BODY})

    assert r.status_code == 413
    assert browser.host.codes == {}


def test_a_body_with_raw_control_bytes_comes_back_escaped(browser: Browser) -> None:
    """A form body is not a request line: raw CR, LF, spaces and high bytes may be in it. The
    URL it comes back as is sent in a Location header, so they are escaped there, and the host
    reads the same values."""
    secret = registered(browser)
    browser.login("alice")
    body = b"client_id=demo&state=a b\r\nSet-Cookie: evil=1&note=caf\xe9&x=%41"

    r = browser.post("/authorize", data=body, content_type="application/x-www-form-urlencoded")

    mfa = location(r)
    page = browser.get_json(mfa).get_json()
    r = browser.post(mfa, data={"method_id": page["method"]["id"], "csrf_token": page["csrf_token"],
                                "code": pyotp.TOTP(secret).at(browser.clock.now())})  # fmt: skip
    back = r  # the verify sends the browser straight back to the request
    url = back.headers["Location"]
    assert not any(c in url for c in " \r\n") and url.isascii()
    assert parse_qsl(urlsplit(url).query, encoding="latin-1") == [
        ("client_id", "demo"), ("state", "a b\r\nSet-Cookie: evil=1"), ("note", "caf\xe9"),
        ("x", "A"),
    ]  # fmt: skip
    assert "evil" not in str(back.headers.get("Set-Cookie"))
