"""``[web].login_url``: a security-info page without a session sends the user to the host's login
page with a same-origin ``next`` (issue 18.4), instead of the dead-end "You're not signed in"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import reset_helpers
from webtest import Browser, base_config, location

from oidc_combinedreg import ConfigError, parse_config
from oidc_combinedreg.clock import FrozenClock

SECURITY_INFO = "/security-info/"


def _next(url: str) -> str:
    return parse_qs(urlsplit(url).query)["next"][0]


def test_security_info_without_a_session_redirects_to_the_login_page_with_next(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(web={"secure_cookies": False, "login_url": "/login"})
    r = browser.get(SECURITY_INFO, headers={"Accept": "text/html"})
    assert r.status_code == 303
    assert location(r).startswith("/login?")
    assert _next(location(r)) == SECURITY_INFO
    deeper = browser.get("/security-info/add/totp?x=1", headers={"Accept": "text/html"})
    assert _next(location(deeper)) == "/security-info/add/totp?x=1"


def test_the_host_login_brings_the_user_back_to_security_info(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(web={"secure_cookies": False, "login_url": "/login"})
    to_login = location(browser.get(SECURITY_INFO, headers={"Accept": "text/html"}))
    # the plain host's login accepts its own paths as next (/authorize, /security-info/...)
    r = browser.post(to_login, data={"username": "bob", "password": "bob-password"})
    assert r.status_code in (302, 303)
    assert location(r) == SECURITY_INFO
    page = browser.get_json(SECURITY_INFO).get_json()
    assert page["page"] != "error", page


def test_a_login_url_with_a_query_keeps_it(make_browser: Callable[..., Browser]) -> None:
    browser = make_browser(
        web={"secure_cookies": False, "login_url": "https://portal.example/login?app=idp"}
    )
    r = browser.get(SECURITY_INFO, headers={"Accept": "text/html"})
    assert location(r).startswith("https://portal.example/login?app=idp&next=")
    assert _next(location(r)) == SECURITY_INFO


def test_the_json_twin_keeps_the_401_and_names_the_login_page(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(web={"secure_cookies": False, "login_url": "/login"})
    body = browser.get_json("/security-info/add/totp")
    assert body.status_code == 401
    assert body.get_json()["login_url"] == "/login?next=%2Fsecurity-info%2Fadd%2Ftotp"


def test_a_sign_in_step_links_to_the_login_page_without_next(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(web={"secure_cookies": False, "login_url": "/login"})
    browser.client.set_cookie("combinedreg", "garbage")  # an ended session's cookie
    r = browser.get("/security-info/mfa?c=abc", headers={"Accept": "text/html"})
    assert r.status_code == 401
    assert 'href="/login"' in r.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    ["//evil.example/x", "/\\evil.example/x"],
)
def test_next_is_never_another_origin(make_browser: Callable[..., Browser], path: str) -> None:
    browser = make_browser(web={"secure_cookies": False, "login_url": "/login"})
    r = browser.get("/security-info/add/totp", environ_overrides={"SCRIPT_NAME": path[:-2]})
    if r.status_code == 303:
        nxt = _next(location(r))
        assert nxt.startswith("/") and not nxt.startswith(("//", "/\\")), nxt
    else:
        assert r.status_code == 401


def test_without_login_url_the_page_stays_as_it_was(browser: Browser) -> None:
    r = browser.get(SECURITY_INFO, headers={"Accept": "text/html"})
    assert r.status_code == 401
    assert "/login" not in r.get_data(as_text=True)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("login", "expected a path starting with '/' or an absolute https URL"),
        ("//evil.example/login", "expected a path starting with '/' or an absolute https URL"),
        ("javascript:alert(1)", "expected a path starting with '/' or an absolute https URL"),
        ("/login#top", "without '#'"),
    ],
)
def test_login_url_is_validated(tmp_path: Path, value: str, message: str) -> None:
    data: dict[str, Any] = base_config(tmp_path, web={"secure_cookies": False, "login_url": value})
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert "web.login_url" in str(err.value) and message in str(err.value)


def test_plain_http_login_url_is_refused_in_production(tmp_path: Path) -> None:
    data = base_config(tmp_path, web={"login_url": "http://portal.example/login"})
    data["general"]["environment"] = "production"
    with pytest.raises(ConfigError, match=r"web.login_url: expected an https URL"):
        parse_config(data)


def test_the_reset_done_page_signs_in_at_the_login_page(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def with_login_url(tmp: Path, **sections: Any) -> dict[str, Any]:
        data = base_config(tmp, **sections)
        data["web"] = {**data["web"], "login_url": "/login?from=reset"}
        return data

    monkeypatch.setattr(reset_helpers, "base_config", with_login_url)
    env = reset_helpers.make_env(tmp_path, clock, monkeypatch)
    reset_helpers.add_email(env.reg, "alice")
    flow = reset_helpers.Reset(env.browser)
    flow.start("alice")
    flow.choose("email")
    assert (
        flow.verify(code=env.sender.last_code(to="alice.private@example.test")).status_code == 303
    )
    flow.page("/security-info/reset/password")
    new = "a brand new password"
    r = env.browser.post("/security-info/reset/password", headers={"Accept": "text/html"},
                         data={"csrf_token": flow.token, "action": "password", "password": new,
                               "confirm": new})  # fmt: skip
    assert r.status_code == 200, r.get_data(as_text=True)
    assert 'href="/login?from=reset"' in r.get_data(as_text=True)
