"""Language choice and gettext catalogs (Babel).

Order: ``?lng=`` on any page (remembered in a cookie), then that cookie, then Accept-Language, then
the configured default. Unknown codes fall back cleanly instead of failing.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.support import NullTranslations, Translations

__all__ = ["LANG_COOKIE", "SUPPORTED", "choose_language", "is_rtl", "translations"]

SUPPORTED = ("en", "de", "fr", "es", "ja", "ar")
LANG_COOKIE = "combinedreg_lng"
_CATALOGS = Path(__file__).parent / "translations"


def _normalize(code: str | None) -> str | None:
    if not code:
        return None
    base = code.strip().replace("_", "-").split("-")[0].lower()
    return base if base in SUPPORTED else None


def _from_accept_language(header: str) -> str | None:
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")[:20]):
        lang, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        code = _normalize(lang)
        if code and q > 0:
            ranked.append((-q, i, code))
    return min(ranked)[2] if ranked else None


def choose_language(
    query: str | None, cookie: str | None, accept_language: str | None, default: str
) -> tuple[str, bool]:
    """``(language, remember)``: remember is True when ``?lng=`` chose it (set the cookie)."""
    chosen = _normalize(query)
    if chosen:
        return chosen, True
    for candidate in (_normalize(cookie), _from_accept_language(accept_language or "")):
        if candidate:
            return candidate, False
    return _normalize(default) or "en", False


@lru_cache(maxsize=16)
def translations(lang: str) -> NullTranslations:
    if lang == "en":
        return NullTranslations()
    return Translations.load(str(_CATALOGS), [lang], domain="messages")


@lru_cache(maxsize=16)
def is_rtl(lang: str) -> bool:
    try:
        return Locale.parse(lang).character_order == "right-to-left"
    except (ValueError, UnknownLocaleError):
        return False
