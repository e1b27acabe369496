"""Language choice, gettext catalogs (Babel) and localized dates and numbers.

Order: ``?lng=`` on any page (remembered in a cookie), then that cookie, then Accept-Language, then
the configured default. Unknown codes fall back cleanly instead of failing.

Catalogs are the ``.po`` files in ``translations/<lang>/LC_MESSAGES/messages.po``, read at run time
with Babel (one source of truth, nothing generated to keep in step). A compiled ``messages.mo`` next
to a ``.po`` is used instead when it is at least as new (``make i18n-compile``, for images that want
to skip parsing). Templates call ``_``/``gettext``/``ngettext`` as globals that read the language of
the page being rendered from a context variable, so macros imported without context translate too.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

__all__ = [
    "CATALOGS",
    "LANG_COOKIE",
    "LANGUAGE_NAMES",
    "SUPPORTED",
    "N_",
    "active_language",
    "choose_language",
    "gettext",
    "is_rtl",
    "localized_date",
    "localized_datetime",
    "localized_number",
    "ngettext",
    "translations",
    "using_language",
]

SUPPORTED = ("en", "de", "fr", "es", "ja", "ar")
#: each language's name in that language (the language switcher)
LANGUAGE_NAMES = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "es": "Español",
    "ja": "日本語",
    "ar": "العربية",
}
LANG_COOKIE = "combinedreg_lng"
CATALOGS = Path(__file__).parent / "translations"

_current: ContextVar[str] = ContextVar("combinedreg_lang", default="en")


def N_(msgid: str) -> str:  # noqa: N802 - the gettext convention for "mark for extraction only"
    """Mark a string for the catalogs; it is translated where it is shown (the templates)."""
    return msgid


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
    """The catalog of a supported language (English: the msgids themselves)."""
    folder = CATALOGS / lang / "LC_MESSAGES"
    po, mo = folder / "messages.po", folder / "messages.mo"
    if lang == "en" or lang not in SUPPORTED or not po.is_file():
        return NullTranslations()
    if mo.is_file() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as fp:
            return Translations(fp, domain="messages")
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)  # fuzzy entries are left out, as msgfmt does
    buffer.seek(0)
    return Translations(buffer, domain="messages")


@contextmanager
def using_language(lang: str) -> Iterator[None]:
    """Render (or format) in ``lang`` within the block; thread- and task-safe."""
    token = _current.set(lang)
    try:
        yield
    finally:
        _current.reset(token)


def active_language() -> str:
    return _current.get()


def gettext(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def _to_datetime(value: float | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromtimestamp(value, tz=dt.UTC)


def localized_date(value: float | dt.datetime | None, fmt: str = "medium") -> str:
    """A timestamp as a date in the page's language ("14 Nov 2023", "2023/11/14")."""
    if value is None:
        return ""
    return format_date(_to_datetime(value), format=fmt, locale=_current.get())


def localized_datetime(value: float | dt.datetime | None, fmt: str = "medium") -> str:
    """A timestamp as date and time (UTC) in the page's language."""
    if value is None:
        return ""
    return format_datetime(_to_datetime(value), format=fmt, tzinfo=dt.UTC, locale=_current.get())


def localized_number(value: float) -> str:
    """A number with the language's digits grouping and decimal sign."""
    return format_decimal(value, locale=_current.get())


@lru_cache(maxsize=16)
def is_rtl(lang: str) -> bool:
    try:
        return Locale.parse(lang).character_order == "right-to-left"
    except (ValueError, UnknownLocaleError):
        return False
