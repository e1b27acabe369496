"""Languages, right-to-left layout and the cookie check in real headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture
def context(chromium_browser: Any) -> Iterator[Any]:
    context = chromium_browser.new_context(locale="en-US")
    context.set_default_timeout(10_000)
    yield context
    context.close()


def block_cookies(context: Any) -> None:
    """A browser that refuses every cookie: responses arrive without Set-Cookie, nothing is kept."""

    def handle(route: Any) -> None:
        # Forward what Chromium really sent (all_headers: Sec-Fetch-*, Accept-Language), no cookie.
        sent = {k: v for k, v in route.request.all_headers().items() if k != "cookie"}
        response = route.fetch(headers=sent, max_redirects=0)
        context.clear_cookies()
        headers = {k: v for k, v in response.headers.items() if k.lower() != "set-cookie"}
        route.fulfill(response=response, headers=headers)

    context.route("**/*", handle)


def test_lng_is_remembered_for_later_visits(context: Any, frozen_idp_server: Any) -> None:
    page = context.new_page()
    page.goto(f"{frozen_idp_server.url}/security-info/?lng=de")
    assert page.locator("html").get_attribute("lang") == "de"
    german_title = page.locator("h1").inner_text()
    page.goto(f"{frozen_idp_server.url}/security-info/")  # no ?lng: the cookie decides
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.locator("h1").inner_text() == german_title
    assert german_title == "Sie sind nicht angemeldet"
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "You're not signed in"


def test_accept_language_chooses_when_nothing_else_does(
    chromium_browser: Any, frozen_idp_server: Any
) -> None:
    context = chromium_browser.new_context(locale="fr-FR")
    page = context.new_page()
    page.goto(f"{frozen_idp_server.url}/security-info/")
    assert page.locator("html").get_attribute("lang") == "fr"
    context.close()


def test_arabic_renders_right_to_left(context: Any, frozen_idp_server: Any) -> None:
    page = context.new_page()
    page.goto(f"{frozen_idp_server.url}/security-info/?lng=ar")
    html = page.locator("html")
    assert (html.get_attribute("lang"), html.get_attribute("dir")) == ("ar", "rtl")
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    # Mirrored layout: the first language link sits on the right, the last on the left.
    links = page.locator(".langs a")
    first, last = links.first.bounding_box(), links.last.bounding_box()
    assert first["x"] > last["x"]
    assert page.locator("h1").inner_text() == "أنت غير مسجل الدخول"


def test_blocked_cookies_get_a_clear_page_not_a_loop(context: Any, frozen_idp_server: Any) -> None:
    block_cookies(context)
    page = context.new_page()
    page.goto(f"{frozen_idp_server.url}/authorize?client_id=demo-rp&response_type=code")
    assert "/security-info/signin?c=" in page.url
    assert page.locator("h1").inner_text() == "Turn on cookies to sign in"
    assert "allow cookies" in page.inner_text("main")
    assert context.cookies() == []


def test_the_cookies_page_speaks_the_browsers_language(
    chromium_browser: Any, frozen_idp_server: Any
) -> None:
    context = chromium_browser.new_context(locale="de-DE")
    block_cookies(context)
    page = context.new_page()
    page.goto(f"{frozen_idp_server.url}/authorize?client_id=demo-rp&response_type=code")
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.locator("h1").inner_text() == "Cookies aktivieren, um sich anzumelden"
    context.close()


def test_with_cookies_the_check_is_invisible(context: Any, frozen_idp_server: Any) -> None:
    page = context.new_page()
    page.goto(f"{frozen_idp_server.url}/authorize?client_id=demo-rp&response_type=code")
    # Probe -> /signin?c=... -> back to /authorize -> the host (here: its error for a bad request).
    assert "/security-info/" not in page.url
    assert any(c["name"] == "combinedreg" for c in context.cookies())
