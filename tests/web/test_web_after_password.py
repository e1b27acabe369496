"""The password's answer goes straight to the sign-in's next page (decision 226).

A host answers a correct password with a redirect back to the authorization request. Where the
/authorize guard would answer that request with a redirect to one of the middleware's pages, the
middleware points the host's redirect at that page itself (web/after_password.py): the same page
and continuation, one request fewer. Everything the guard would answer otherwise (a code, an error
for the relying party, a refusal) is left to the guard, unchanged, and audited once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit

import pyotp
import pytest
from plain_wsgi_host import DictDirectory
from reset_helpers import add_totp
from test_web_acr_values import PHR, add_security_key, essential
from webtest import (
    BLOCK_DEMO,
    T0,
    TRIAL_MFA,
    Browser,
    base_config,
    cid_of,
    code_from,
    location,
    stored_conts,
)
from werkzeug.test import Client

from oidc_combinedreg import CombinedRegistration, parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.policy.reset import PASSWORD_RESET_REQUIRED
from oidc_combinedreg.store.sqlite import SqliteStore

AUTHORIZE = "/authorize?client_id=demo&state=s1"
BOB_EXEMPT = {"bob": frozenset({"break-glass"})}


def login(browser: Browser, user: str, query: str = "client_id=demo&state=s1") -> Any:
    """The plain host's password form, sent back to ``/authorize?query``."""
    r = browser.post(
        "/login?next=" + quote(f"/authorize?{query}", safe=""),
        data={"username": user, "password": f"{user}-password"},
    )
    assert r.status_code == 303, r.get_data(as_text=True)
    return r


def evaluated(browser: Browser) -> list[str]:
    return [e.outcome for e in browser.reg.store.list_audit(event_prefix="ca.evaluated")]


def test_an_mfa_step_goes_from_the_password_to_the_mfa_page_and_on_to_the_code(
    browser: Browser,
) -> None:
    secret = add_totp(browser.reg, "alice")
    browser.clock.advance(60)
    r = login(browser, "alice")
    mfa = location(r)
    assert re.fullmatch(r"/security-info/mfa\?c=[\w-]+", mfa), mfa
    # the continuation the guard would have kept: this authorization request, in the store
    assert stored_conts(browser)[cid_of(mfa)]["url"] == AUTHORIZE
    cookie = browser.reg.sessions.cookie_name
    assert any(c.startswith(f"{cookie}=") for c in r.headers.getlist("Set-Cookie"))  # as before
    page = browser.get_json(mfa).get_json()
    assert page["page"] == "mfa" and page["method"]["kind"] == "totp"
    form = {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"],
            "code": pyotp.TOTP(secret).at(browser.clock.now())}  # fmt: skip
    r = browser.post(mfa, data=form)
    assert r.status_code == 303 and location(r) == AUTHORIZE
    code = code_from(browser.get(AUTHORIZE))
    assert code is not None
    assert set(browser.host.codes[code]["amr"]) == {"pwd", "otp", "mfa"}
    assert stored_conts(browser) == {}


def test_each_step_goes_to_the_page_the_guard_would_choose(
    make_browser: Callable[..., Browser],
) -> None:
    """The wizard, phishing resistance, a flagged account's password reset: the login's answer
    is the URL the guard answers the same request with."""
    browser = make_browser()
    assert re.fullmatch(r"/security-info/wizard\?c=[\w-]+", location(login(browser, "alice")))

    add_totp(browser.reg, "alice")
    add_security_key(browser, "alice")
    browser.clock.advance(60)
    query = f"client_id=demo&state=s1&acr_values={PHR}"
    assert re.fullmatch(r"/security-info/mfa\?c=[\w-]+&only=phr", location(login(browser, "alice", query)))  # fmt: skip
    guard = location(browser.authorize(query))
    assert re.fullmatch(r"/security-info/mfa\?c=[\w-]+&only=phr", guard), guard

    state = browser.reg.store.get_user_state("alice")
    browser.reg.store.put_user_state(replace(state, extra={PASSWORD_RESET_REQUIRED: True}))
    assert location(login(browser, "alice")) == "/security-info/reset"
    assert browser.host.codes == {}


def test_a_cleared_sign_in_keeps_the_hosts_redirect_and_writes_nothing_more(
    make_browser: Callable[..., Browser],
) -> None:
    """bob needs no step: the host's answer is untouched, the session is stored as the password
    left it (no continuation), and /authorize issues the code as before."""
    browser = make_browser(groups=BOB_EXEMPT)
    r = login(browser, "bob")
    assert location(r) == AUTHORIZE
    assert stored_conts(browser) == {}
    assert code_from(browser.authorize()) is not None


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("client_id=demo&state=s1&prompt=none", "prompt=none: the RP hears interaction_required"),
        ("client_id=nobody&state=s1", "a client the host refuses"),
        (f"client_id=demo&state=s1&{essential(PHR)}", "an essential acr unmet: access_denied"),
    ],
)
def test_what_the_guard_answers_without_a_page_is_left_to_it(
    browser: Browser, query: str, why: str
) -> None:
    r = login(browser, "alice", query)
    assert location(r) == f"/authorize?{query}", why
    assert stored_conts(browser) == {}, why
    answer = browser.authorize(query)
    assert not location(answer).startswith("/security-info/"), why


def test_a_report_only_policy_is_audited_once_per_decision(
    make_browser: Callable[..., Browser],
) -> None:
    """The decision made for the login's answer audits its evaluation with the session it
    saves; one left to the guard (a cleared sign-in) is audited there only, not twice."""
    browser = make_browser(conditional_access=[TRIAL_MFA], groups=BOB_EXEMPT)
    assert location(login(browser, "alice")).startswith("/security-info/wizard?c=")
    assert evaluated(browser) == ["info"]
    assert location(login(browser, "bob")) == AUTHORIZE
    assert evaluated(browser) == ["info"]  # nothing kept from the decision the guard makes
    assert code_from(browser.authorize()) is not None
    assert evaluated(browser) == ["info", "info"]


def test_a_blocked_sign_in_goes_to_the_blocked_page_audited_once(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(conditional_access=[BLOCK_DEMO])
    blocked = location(login(browser, "alice"))
    assert re.fullmatch(r"/security-info/signin\?c=[\w-]+", blocked), blocked
    assert evaluated(browser) == ["blocked"]
    page = browser.get_json(blocked)
    assert page.status_code == 403 and page.get_json()["page"] == "blocked"
    assert browser.host.codes == {}


def test_a_store_outage_while_deciding_leaves_the_hosts_redirect(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The password's own write went through; the decision's fails: the browser goes to
    /authorize as before, where the guard decides again (once the store is back)."""
    store = browser.reg.store
    real = store.save_session
    saves: list[str] = []

    def second_fails(*args: Any, **kwargs: Any) -> Any:
        saves.append("save")
        if len(saves) == 2:
            raise StoreUnavailable("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "save_session", second_fails)
    r = login(browser, "alice")
    assert len(saves) == 2 and location(r) == AUTHORIZE
    assert stored_conts(browser) == {}
    cookie = browser.reg.sessions.cookie_name
    assert any(c.startswith(f"{cookie}=") for c in r.headers.getlist("Set-Cookie"))
    assert location(browser.authorize()).startswith("/security-info/wizard?c=")


# -- any host: what the middleware takes as "back to the authorization request" ---------------


class AnswerHost:
    """``/login?user=NAME`` verifies NAME and answers ``status`` with ``Location: location``."""

    def __init__(self, status: str, location: str) -> None:
        self.status, self.location = status, location
        self.reg: CombinedRegistration | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        assert self.reg is not None and environ["PATH_INFO"] == "/login"
        user = dict(parse_qsl(environ["QUERY_STRING"]))["user"]
        self.reg.password_verified(environ, user)
        start_response(self.status, [("Location", self.location), ("X-Host", "kept")])
        return [b""]


class Endpoint:
    def error_response(self, environ: Any, params: Any, error: str, description: str) -> Any:
        raise AssertionError("not reached")

    def effective_params(self, environ: Any, params: Any) -> Any:
        return params


@pytest.fixture
def answer(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    stores: list[SqliteStore] = []

    def send(status: str, where: str, base_url: str = "http://localhost/") -> tuple[str, list[str]]:
        """alice's login (the application at ``base_url``) answered ``status`` to ``where``:
        (the Location sent, the headers' names in order)."""
        clock = FrozenClock(T0)
        store = SqliteStore(str(tmp_path / f"reg{len(stores)}.sqlite3"), clock=clock)
        stores.append(store)
        host = AnswerHost(status, where)
        host.reg = CombinedRegistration(
            host,
            config=parse_config(base_config(tmp_path)),
            directory=DictDirectory(),
            store=store,
            clock=clock,
            authorization=Endpoint(),
        )
        r = Client(host.reg).get(
            "/login?user=alice", base_url=base_url, environ_base={"REMOTE_ADDR": "127.0.0.1"}
        )
        return r.headers["Location"], [name for name, _ in r.headers]

    yield send
    for store in stores:
        store.close()


WIZARD = re.compile(r"/security-info/wizard\?c=[\w-]+")


@pytest.mark.parametrize("status", ["302 Found", "303 See Other"])
def test_a_redirect_to_the_authorization_endpoint_is_pointed_at_the_page(
    answer: Callable[..., Any], status: str
) -> None:
    sent, names = answer(status, "/authorize?client_id=demo")
    assert WIZARD.fullmatch(sent), sent
    # the host's other headers kept in their order, the session cookie after them
    assert names == ["Location", "X-Host", "Set-Cookie"]


def test_an_absolute_url_of_the_same_host_counts(answer: Callable[..., Any]) -> None:
    sent, _ = answer("302 Found", "http://idp.example.test/authorize?client_id=demo",
                     "http://idp.example.test/")  # fmt: skip
    assert WIZARD.fullmatch(sent), sent


def test_the_application_mount_point_is_part_of_the_path(answer: Callable[..., Any]) -> None:
    sent, _ = answer("302 Found", "/idp/authorize?client_id=demo", "http://localhost/idp/")
    assert WIZARD.fullmatch(sent.removeprefix("/idp")), sent
    sent, _ = answer("302 Found", "/authorize?client_id=demo", "http://localhost/idp/")
    assert sent == "/authorize?client_id=demo"  # not this application's endpoint


@pytest.mark.parametrize(
    ("status", "where", "base_url"),
    [
        ("307 Temporary Redirect", "/authorize?client_id=demo", "http://localhost/"),  # would POST the form again
        ("200 OK", "/authorize?client_id=demo", "http://localhost/"),
        ("302 Found", "/", "http://localhost/"),
        ("302 Found", "/authorize/x?client_id=demo", "http://localhost/"),
        ("302 Found", "//idp.example.test/authorize?client_id=demo", "http://localhost/"),
        ("302 Found", "http://other.example.test/authorize?client_id=demo",
         "http://idp.example.test/"),
        ("302 Found", "ftp://idp.example.test/authorize?client_id=demo",
         "http://idp.example.test/"),
        # a browser would encode these before sending: the continuation would not be its request
        ("302 Found", "/authorize?client_id=demo&state=a b", "http://localhost/"),
        ("302 Found", "/authorize?client_id=demo&state=\u00e9", "http://localhost/"),
        ("302 Found", "/authorize?client_id=demo#frag", "http://localhost/"),
    ],
)  # fmt: skip
def test_any_other_answer_is_sent_as_the_host_wrote_it(
    answer: Callable[..., Any], status: str, where: str, base_url: str
) -> None:
    sent, _ = answer(status, where, base_url)
    assert sent == where


# -- the example IdP and the Temporary Access Pass ---------------------------------------------


def test_the_example_idps_login_answers_with_the_mfa_page(
    tmp_path: Path, clock: FrozenClock
) -> None:
    from idp_client import authorize_params, make_idp, registered

    idp = make_idp(tmp_path, clock)
    client_id = registered(idp)["client_id"]
    add_totp(idp.application.extensions["example_idp"].registration, "grace")
    url = "/authorize?" + urlencode(authorize_params(client_id))
    form_page = idp.get(url).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]*)"', form_page)
    assert token is not None
    r = idp.post("/login", data={"csrf_token": token.group(1), "username": "grace",
                                 "password": "grace", "next": url})  # fmt: skip
    assert r.status_code == 302
    mfa = urlsplit(r.headers["Location"])
    assert mfa.path == "/security-info/mfa" and list(parse_qs(mfa.query)) == ["c"]
