"""A host adds a language, overrides strings and chooses the footer's languages through
``[general] languages`` and ``catalog_dirs`` (issue 18.4), without touching the package."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_web_manage import SECURITY_INFO, enrolled
from webtest import Browser, base_config

from oidc_combinedreg import ConfigError, parse_config
from oidc_combinedreg.web.i18n import gettext, translations, using_language


def _po(folder: Path, lang: str, entries: dict[str, str]) -> None:
    target = folder / lang / "LC_MESSAGES"
    target.mkdir(parents=True)
    body = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
    body += "".join(f'msgid "{k}"\nmsgstr "{v}"\n\n' for k, v in entries.items())
    (target / "messages.po").write_text(body, encoding="utf-8")


@pytest.fixture
def catalogs(tmp_path: Path) -> Path:
    folder = tmp_path / "host-catalogs"
    _po(folder, "de", {"Security info": "Sicherheit bei Contoso"})  # one string overridden
    _po(folder, "en", {"Skip to content": "Jump to the page"})
    _po(folder, "nl", {"Security info": "Beveiligingsgegevens", "Skip to content": "Naar inhoud"})
    return folder


def _browser(make_browser: Callable[..., Browser], folder: Path, **general: Any) -> Browser:
    return make_browser(
        general={
            "organization": "Test Org",
            "environment": "development",
            "catalog_dirs": [str(folder)],
            "languages": ["en", "de", "nl"],
            **general,
        }
    )


def _footer(html: str) -> list[str]:
    return re.findall(r'hreflang="([a-z]+)"', html)


def test_a_host_catalog_overrides_strings_and_adds_a_language(
    make_browser: Callable[..., Browser], catalogs: Path
) -> None:
    browser = _browser(make_browser, catalogs)
    enrolled(browser)
    de = browser.get(SECURITY_INFO + "?lng=de").get_data(as_text=True)
    assert "<h1>Sicherheit bei Contoso</h1>" in de  # the host's entry
    assert "Authentifizierungs-App" in de  # the shipped German for the rest
    nl = browser.get(SECURITY_INFO + "?lng=nl").get_data(as_text=True)
    assert '<html lang="nl"' in nl and "<h1>Beveiligingsgegevens</h1>" in nl
    assert "Authenticator app" in nl  # not in the host's Dutch: English
    en = browser.get(SECURITY_INFO + "?lng=en").get_data(as_text=True)
    assert "Jump to the page" in en and "Skip to content" not in en


def test_the_footer_lists_the_configured_languages_only(
    make_browser: Callable[..., Browser], catalogs: Path
) -> None:
    browser = _browser(make_browser, catalogs)
    html = browser.get("/security-info/reset").get_data(as_text=True)
    assert _footer(html) == ["en", "de", "nl"]
    assert ">Nederlands</a>" in html  # the language's own name, from Babel
    # a language not offered is not chosen, by ?lng= nor Accept-Language
    fr = browser.get("/security-info/reset?lng=fr", headers={"Accept-Language": "fr, nl;q=0.5"})
    assert '<html lang="nl"' in fr.get_data(as_text=True)


def test_the_host_catalogs_stay_with_their_middleware(
    make_browser: Callable[..., Browser], catalogs: Path
) -> None:
    browser = _browser(make_browser, catalogs)
    browser.get("/security-info/reset?lng=de")
    with using_language("de"):  # outside a request: the shipped catalogs again
        assert gettext("Security info") == "Sicherheitsinformationen"
    assert translations("nl").gettext("Security info") == "Security info"


def _problems(tmp_path: Path, **general: Any) -> str:
    data = base_config(tmp_path)
    data["general"].update(general)
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    return str(err.value)


def test_an_unknown_language_code_is_named(tmp_path: Path) -> None:
    text = _problems(tmp_path, languages=["en", "xx"])
    assert "general.languages: [1]: unknown language code 'xx'" in text


def test_a_language_without_a_catalog_is_named(tmp_path: Path) -> None:
    text = _problems(tmp_path, languages=["en", "nl"])
    assert "general.languages: [1]: no catalog for 'nl'" in text
    assert "nl/LC_MESSAGES/messages.po" in text


def test_a_folder_without_catalogs_is_named(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    text = _problems(tmp_path, catalog_dirs=[str(tmp_path / "empty")])
    assert "general.catalog_dirs: [0]: expected a folder of catalogs" in text
    missing = _problems(tmp_path, catalog_dirs=[str(tmp_path / "nowhere")])
    assert "general.catalog_dirs: [0]: expected an existing folder" in missing


def test_the_default_language_must_be_offered(tmp_path: Path) -> None:
    text = _problems(tmp_path, languages=["en", "de"], default_language="fr")
    assert "general.default_language: expected one of general.languages (en, de), got 'fr'" in text


def test_the_shipped_defaults_are_unchanged(tmp_path: Path) -> None:
    config = parse_config(base_config(tmp_path))
    assert config.general.languages == ("en", "de", "fr", "es", "ja", "ar")
    assert config.general.catalog_dirs == ()


def test_a_text_sent_in_a_request_uses_the_host_strings(tmp_path: Path, catalogs: Path) -> None:
    from plain_wsgi_host import DictDirectory, make_app
    from reset_helpers import add_phone
    from webtest import T0, location

    from oidc_combinedreg.clock import FrozenClock
    from oidc_combinedreg.store.memory import MemoryStore
    from oidc_combinedreg.testing import RecordingSender

    msgid = "%(org)s: your verification code is %(code)s. It expires in %(minutes)s minutes."
    en = catalogs / "en" / "LC_MESSAGES" / "messages.po"
    en.write_text(
        en.read_text() + f'msgid "{msgid}"\nmsgstr "%(org)s code %(code)s (%(minutes)s min)"\n'
    )
    data = base_config(tmp_path)
    data["general"].update(catalog_dirs=[str(catalogs)], languages=["en", "de", "nl"])
    clock, sender = FrozenClock(T0), RecordingSender()
    reg, host = make_app(parse_config(data), DictDirectory(), store=MemoryStore(clock=clock),
                         clock=clock, delivery=sender.delivery())  # fmt: skip
    browser = Browser(reg, host, clock)
    add_phone(reg, "alice")
    browser.login("alice")
    mfa_url = location(browser.authorize())
    page = browser.get_json(mfa_url).get_json()
    assert page["page"] == "mfa", page
    form = {"action": "start", "via": "sms", "method_id": page["method"]["id"],
            "csrf_token": page["csrf_token"]}  # fmt: skip
    assert browser.post_json(mfa_url, form).status_code == 200
    assert re.fullmatch(r"Test Org code \d{6} \(\d+ min\)", sender.texts[-1].body)
