"""Localization: language choice, right to left, localized dates, and complete catalogs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from test_web_manage import SECURITY_INFO, enrolled
from webtest import Browser

from oidc_combinedreg.web.i18n import (
    CATALOGS,
    LANG_COOKIE,
    SUPPORTED,
    choose_language,
    gettext,
    is_rtl,
    localized_date,
    localized_number,
    translations,
    using_language,
)

ROOT = Path(__file__).resolve().parents[2]
#: the Makefile's i18n-extract keywords: Babel's defaults (_, N_, gettext, ngettext ...) plus the
#: user-facing message of InvalidInput(field, message)
KEYWORDS = {**DEFAULT_KEYWORDS, "InvalidInput": (2,)}


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "default", "expected"),
    [
        pytest.param("de", "fr", "es", "en", ("de", True), id="?lng wins and is remembered"),
        pytest.param("de-AT", None, None, "en", ("de", True), id="?lng with a region"),
        pytest.param(None, "fr", "es", "en", ("fr", False), id="then the cookie"),
        pytest.param(None, None, "es-MX,es;q=0.9", "en", ("es", False), id="then Accept-Language"),
        pytest.param(
            None, None, "xx,ja;q=0.5,de;q=0.8", "en", ("de", False), id="highest q we support"
        ),
        pytest.param(None, None, "de;q=0", "fr", ("fr", False), id="q=0 means not this one"),
        pytest.param(None, None, None, "ar", ("ar", False), id="then the configured default"),
        pytest.param("klingon", "xx", "zz", "qq", ("en", False), id="unknown everywhere -> en"),
        pytest.param("xx", "ja", None, "en", ("ja", False), id="unknown ?lng falls through"),
    ],
)
def test_language_choice_order(
    query: str | None,
    cookie: str | None,
    accept: str | None,
    default: str,
    expected: tuple[str, bool],
) -> None:
    assert choose_language(query, cookie, accept, default) == expected


def test_lng_sets_a_cookie_that_later_visits_use(browser: Browser) -> None:
    enrolled(browser)
    r = browser.get(SECURITY_INFO + "?lng=de")
    assert f"{LANG_COOKIE}=de" in r.headers.get("Set-Cookie", "")
    assert 'lang="de"' in r.get_data(as_text=True)
    r = browser.get(SECURITY_INFO, headers={"Accept-Language": "fr"})
    assert 'lang="de"' in r.get_data(as_text=True)  # the cookie beats Accept-Language
    r = browser.get(SECURITY_INFO + "?lng=xx")
    assert LANG_COOKIE not in r.headers.get("Set-Cookie", "")
    assert 'lang="de"' in r.get_data(as_text=True)


def test_arabic_pages_are_right_to_left(browser: Browser) -> None:
    enrolled(browser)
    html = browser.get(SECURITY_INFO + "?lng=ar").get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in html
    assert [lang for lang in SUPPORTED if is_rtl(lang)] == ["ar"]


@pytest.mark.parametrize(
    ("lang", "date", "number"),
    [
        pytest.param("en", "Nov 14, 2023", "1,234.5", id="English"),
        pytest.param("de", "14.11.2023", "1.234,5", id="German"),
        pytest.param("fr", "14 nov. 2023", "1\u202f234,5", id="French"),
        pytest.param("ja", "2023/11/14", "1,234.5", id="Japanese"),
        pytest.param("ar", "14\u200f/11\u200f/2023", "1,234.5", id="Arabic"),
    ],
)
def test_dates_and_numbers_are_localized(lang: str, date: str, number: str) -> None:
    with using_language(lang):
        assert localized_date(dt.datetime(2023, 11, 14, 22, 13, tzinfo=dt.UTC)) == date
        assert localized_number(1234.5) == number


def _extracted() -> set[str]:
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = extract_from_dir(
        str(ROOT / "oidc_combinedreg"), method_map, options_map, keywords=KEYWORDS
    )
    ids: set[str] = set()
    for _file, _line, message, _comments, _context in found:
        ids.add(message if isinstance(message, str) else message[0])
    return ids


@pytest.mark.parametrize("lang", [lang for lang in SUPPORTED if lang != "en"])
def test_every_shipped_language_translates_every_message(lang: str) -> None:
    """Extraction runs here against the code as it is: a new string anywhere fails until every
    language has it (make i18n-update adds it, empty, to each catalog)."""
    extracted = _extracted()
    assert len(extracted) > 300
    with (CATALOGS / lang / "LC_MESSAGES" / "messages.po").open("rb") as fp:
        catalog = read_po(fp, locale=lang)
    translated = {
        m.id if isinstance(m.id, str) else m.id[0]
        for m in catalog
        if m.id and not m.fuzzy and all(m.string if isinstance(m.string, tuple) else [m.string])
    }
    missing = sorted(extracted - translated)
    assert not missing, f"{lang}: {len(missing)} untranslated, e.g. {missing[:5]}"
    problems = [(m.id, errors) for m, errors in catalog.check()]
    assert not problems, f"{lang}: placeholders differ: {problems[:3]}"


def test_translations_are_used_in_pages_and_python_strings(browser: Browser) -> None:
    enrolled(browser)
    html = browser.get(SECURITY_INFO + "?lng=de").get_data(as_text=True)
    assert "<h1>Sicherheitsinformationen</h1>" in html
    assert "Authentifizierungs-App" in html  # a METHOD_NAMES value, marked with N_ in Python
    with using_language("fr"):
        assert gettext("Security info") == "Informations de sécurité"
    assert translations("en").gettext("Security info") == "Security info"
