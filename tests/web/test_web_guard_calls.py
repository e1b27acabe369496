"""What the /authorize guard does per request (issue 22): it runs at three of a sign-in's seven
requests, so work it repeats or does not need is paid at each. Its context carries no page
language and no ``?c=``: it draws no page, and the query is the relying party's, which it
parses once itself."""

from __future__ import annotations

from typing import Any

import pytest
from webtest import Browser, code_from, location

from oidc_combinedreg.web import context
from oidc_combinedreg.web.i18n import Catalogs


def test_a_cleared_authorize_parses_its_query_once_and_chooses_no_language(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    mfa_url, form = browser.at_mfa_with_totp()
    authorize = location(browser.post(mfa_url, data=form))
    assert authorize.startswith("/authorize")
    parsed: list[str] = []
    chosen: list[Any] = []
    parse_qsl = context.parse_qsl
    choose = Catalogs.choose

    def counting_parse(text: str, *args: Any, **kwargs: Any) -> Any:
        parsed.append(text)
        return parse_qsl(text, *args, **kwargs)

    def counting_choose(self: Catalogs, *args: Any) -> Any:
        chosen.append(args)
        return choose(self, *args)

    monkeypatch.setattr(context, "parse_qsl", counting_parse)
    monkeypatch.setattr(Catalogs, "choose", counting_choose)
    assert code_from(browser.get(authorize)) is not None
    assert parsed == [] and chosen == []


def test_the_guard_still_answers_in_the_pages_language_when_the_store_is_down(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: no store, no code; the error page (the web app's own context) is still in
    the language the browser asks for."""
    from oidc_combinedreg.exceptions import StoreUnavailable

    browser.login("alice")

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("down")

    monkeypatch.setattr(browser.reg.store, "load_session", down)
    r = browser.get("/authorize?client_id=demo&state=s1", headers={"Accept-Language": "de"})
    assert r.status_code == 503 and code_from(r) is None
    assert 'lang="de"' in r.get_data(as_text=True)


def test_the_client_address_is_resolved_by_the_middlewares_own_resolver(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``resolve_client_ip`` finds the resolver for the ``[network]`` it is given by hashing
    it (trusted proxies and all) at every call, and a request asks two or three times (its
    context, Conditional Access, the host's counters); the middleware keeps its own."""
    from oidc_combinedreg.conditional_access import client_ip

    def refused(*args: Any) -> Any:
        raise AssertionError("the resolver looked up again")

    monkeypatch.setattr(client_ip, "_resolver", refused)
    assert browser.reg.client_ip({"REMOTE_ADDR": "203.0.113.9"}) == "203.0.113.9"
    browser.login("alice")
    assert browser.authorize().status_code in (302, 303)
