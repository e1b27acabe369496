"""Language choice, gettext catalogs (Babel) and localized dates and numbers.

Order: ``?lng=`` on any page (remembered in a cookie), then that cookie, then Accept-Language, then
the configured default. Unknown codes fall back cleanly instead of failing.

Which languages a deployment offers, and with which catalogs, is a :class:`Catalogs`
(``[general] languages`` and ``catalog_dirs``): the host's catalog folders come before the shipped
ones, entry by entry, so a host ``de`` catalog with three entries changes those three strings and
leaves the rest; a folder with ``nl/LC_MESSAGES/messages.po`` adds Dutch. The page being rendered
reads its Catalogs from a context variable, like its language.

Catalogs are the ``.po`` files in ``translations/<lang>/LC_MESSAGES/messages.po``, read at run time
with Babel (one source of truth, nothing generated to keep in step). A compiled ``messages.mo`` next
to a ``.po`` is used instead when it is at least as new (``make i18n-compile``, for images that want
to skip parsing). Templates call ``_``/``gettext``/``ngettext`` as globals that read the language of
the page being rendered from a context variable, so macros imported without context translate too.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

from ..config.languages import SHIPPED_LANGUAGES, catalog_file

__all__ = [
    "BUILTIN",
    "CATALOGS",
    "Catalogs",
    "LANG_COOKIE",
    "LANGUAGE_NAMES",
    "SUPPORTED",
    "N_",
    "active_catalogs",
    "active_language",
    "choose_language",
    "end_catalogs",
    "gettext",
    "is_rtl",
    "language_name",
    "localized_date",
    "localized_datetime",
    "localized_number",
    "ngettext",
    "translations",
    "use_catalogs",
    "using_language",
]

SUPPORTED = SHIPPED_LANGUAGES
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


def _base(code: str | None) -> str | None:
    if not code:
        return None
    return code.strip().replace("_", "-").split("-")[0].lower() or None


def language_name(code: str) -> str:
    """The language's name in itself ("Deutsch", "Nederlands"), for the language switcher."""
    if code in LANGUAGE_NAMES:
        return LANGUAGE_NAMES[code]
    try:
        name = Locale.parse(code).get_display_name(code) or code
    except (ValueError, UnknownLocaleError):
        return code
    return name[:1].upper() + name[1:]


def _load(folder: Path, lang: str) -> Translations | None:
    """One folder's catalog of ``lang``: its ``.po`` read with Babel (or a newer ``.mo``)."""
    found = catalog_file(folder, lang)
    if found is None:
        return None
    po, mo = found.with_name("messages.po"), found.with_name("messages.mo")
    if mo.is_file() and (not po.is_file() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fp:
            return Translations(fp, domain="messages")
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)  # fuzzy and untranslated entries are left out, as msgfmt does
    buffer.seek(0)
    return Translations(buffer, domain="messages")


class Catalogs:
    """The languages offered and their catalogs: the host's folders over the shipped ones."""

    def __init__(
        self, languages: Sequence[str] = SUPPORTED, extra_dirs: Sequence[str | Path] = ()
    ) -> None:
        self.languages: tuple[str, ...] = tuple(languages)
        #: the first folder wins, as with ``[web].template_dirs``
        self.extra_dirs: tuple[Path, ...] = tuple(Path(d) for d in extra_dirs)
        #: code -> the language's own name, in the configured order (the footer's list)
        self.names: dict[str, str] = {code: language_name(code) for code in self.languages}
        self._cache: dict[str, NullTranslations] = {}
        self._lock = threading.Lock()

    def normalize(self, code: str | None) -> str | None:
        base = _base(code)
        return base if base in self.languages else None

    def choose(
        self, query: str | None, cookie: str | None, accept_language: str | None, default: str
    ) -> tuple[str, bool]:
        """``(language, remember)``: remember is True when ``?lng=`` chose it (set the cookie)."""
        chosen = self.normalize(query)
        if chosen:
            return chosen, True
        for candidate in (self.normalize(cookie), self._from_accept(accept_language or "")):
            if candidate:
                return candidate, False
        fallback = "en" if "en" in self.languages else self.languages[0]
        return self.normalize(default) or fallback, False

    def _from_accept(self, header: str) -> str | None:
        if not header:
            return None  # no Accept-Language (API clients, benchmarks): nothing to rank
        ranked: list[tuple[float, int, str]] = []
        for i, part in enumerate(header.split(",")[:20]):
            lang, _, params = part.strip().partition(";")
            q = 1.0
            if params.strip().startswith("q="):
                try:
                    q = float(params.strip()[2:])
                except ValueError:
                    q = 0.0
            code = self.normalize(lang)
            if code and q > 0:
                ranked.append((-q, i, code))
        return min(ranked)[2] if ranked else None

    def translations(self, lang: str) -> NullTranslations:
        """The catalog of an offered language: the shipped one with the host's entries on top
        (English without host entries: the msgids themselves)."""
        cached = self._cache.get(lang)
        if cached is not None:
            return cached
        with self._lock:
            if lang not in self._cache:
                self._cache[lang] = self._build(lang)
            return self._cache[lang]

    def _build(self, lang: str) -> NullTranslations:
        if lang not in self.languages:
            return NullTranslations()
        shipped = [CATALOGS] if lang in SUPPORTED and lang != "en" else []
        merged: Translations | None = None
        for folder in [*shipped, *reversed(self.extra_dirs)]:  # later merges win: the first dir
            loaded = _load(folder, lang)
            if loaded is None:
                continue
            if merged is None:
                merged = loaded
            else:
                merged.merge(loaded)
        return merged if merged is not None else NullTranslations()


#: the shipped languages and catalogs (what a page uses when no other Catalogs is active)
BUILTIN = Catalogs()
_catalogs: ContextVar[Catalogs] = ContextVar("combinedreg_catalogs", default=BUILTIN)


def choose_language(
    query: str | None,
    cookie: str | None,
    accept_language: str | None,
    default: str,
    catalogs: Catalogs = BUILTIN,
) -> tuple[str, bool]:
    """``(language, remember)``: remember is True when ``?lng=`` chose it (set the cookie)."""
    return catalogs.choose(query, cookie, accept_language, default)


def translations(lang: str) -> NullTranslations:
    """The catalog of ``lang`` in the active :class:`Catalogs` (the shipped ones by default)."""
    return _catalogs.get().translations(lang)


def use_catalogs(catalogs: Catalogs) -> Token[Catalogs]:
    """Make ``catalogs`` the active ones for the rest of this request's context (the web app
    calls it first thing, so pages and the messages a request sends use the host's); the
    token ends it (:func:`end_catalogs`)."""
    return _catalogs.set(catalogs)


def end_catalogs(token: Token[Catalogs]) -> None:
    """The catalogs active before :func:`use_catalogs` gave ``token``, again."""
    _catalogs.reset(token)


def active_catalogs() -> Catalogs:
    return _catalogs.get()


@contextmanager
def using_language(lang: str, catalogs: Catalogs | None = None) -> Iterator[None]:
    """Render (or format) in ``lang`` within the block; thread- and task-safe."""
    token = _current.set(lang)
    ctoken = _catalogs.set(catalogs) if catalogs is not None else None
    try:
        yield
    finally:
        if ctoken is not None:
            _catalogs.reset(ctoken)
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
    return _date_text(_to_datetime(value).date(), fmt, _current.get())


@lru_cache(maxsize=512)
def _date_text(day: dt.date, fmt: str, lang: str) -> str:
    """One day's text in one language: the pages show a method's "added" date at each render
    (the MFA page twice), and Babel looks the locale and its pattern up each time (about 15 us)."""
    return format_date(day, format=fmt, locale=lang)


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
