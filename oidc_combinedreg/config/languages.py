"""``[general] languages`` and ``catalog_dirs``: which languages the pages offer, and the host's catalogs.

A host adds a language (its ``<code>/LC_MESSAGES/messages.po`` in a catalog folder), overrides
some strings of a shipped one (a ``.po`` with only those entries) or narrows the footer's list.
Checked here, at start-up, with path-named errors: a code Babel does not know, a language without a
catalog, a folder without catalogs, a default language that is not offered.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .reader import Reader

__all__ = ["SHIPPED_LANGUAGES", "catalog_file", "read_languages"]

#: the languages with catalogs in the package (English: the msgids themselves)
SHIPPED_LANGUAGES = ("en", "de", "fr", "es", "ja", "ar")

_CODE = re.compile(r"[a-z]{2,3}")


def catalog_file(folder: Path, lang: str) -> Path | None:
    """``folder/<lang>/LC_MESSAGES/messages.po`` (or a lone ``.mo``), if there is one."""
    base = folder / lang / "LC_MESSAGES"
    for name in ("messages.po", "messages.mo"):
        if (base / name).is_file():
            return base / name
    return None


def _known_to_babel(code: str) -> bool:
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(code)
    except (ValueError, UnknownLocaleError):
        return False
    return True


def _read_dirs(r: Reader, base_dir: Path) -> tuple[Path, ...]:
    dirs: list[Path] = []
    for i, value in enumerate(r.str_list("catalog_dirs")):
        path = Path(value) if os.path.isabs(value) else base_dir / value
        if not path.is_dir():
            r.error("catalog_dirs", f"[{i}]: expected an existing folder, got {value!r}")
            continue
        found = [p.name for p in path.iterdir() if p.is_dir() and catalog_file(path, p.name)]
        if not found:
            r.error(
                "catalog_dirs",
                f"[{i}]: expected a folder of catalogs (<language>/LC_MESSAGES/messages.po), "
                f"found none in {value!r}",
            )
        dirs.append(path)
    return tuple(dirs)


def read_languages(
    r: Reader, base_dir: Path, default_language: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(languages, catalog_dirs)`` of ``[general]``; problems go to the reader."""
    dirs = _read_dirs(r, base_dir)
    languages = r.str_list("languages", SHIPPED_LANGUAGES, non_empty=True)
    seen: set[str] = set()
    for i, code in enumerate(languages):
        if not _CODE.fullmatch(code) or not _known_to_babel(code):
            r.error(
                "languages",
                f"[{i}]: unknown language code {code!r}: expected a lower-case ISO 639 code "
                "such as 'de' or 'nl'",
            )
        elif code in seen:
            r.error("languages", f"[{i}]: {code!r} is listed twice")
        elif code not in SHIPPED_LANGUAGES and not any(catalog_file(d, code) for d in dirs):
            r.error(
                "languages",
                f"[{i}]: no catalog for {code!r}: expected {code}/LC_MESSAGES/messages.po "
                "in one of general.catalog_dirs",
            )
        seen.add(code)
    default = default_language.strip().replace("_", "-").split("-")[0].lower()
    if languages and default not in languages:
        r.error(
            "default_language",
            f"expected one of general.languages ({', '.join(languages)}), got {default_language!r}",
        )
    return tuple(languages), tuple(str(d) for d in dirs)
