"""``[web.branding]``: the host's logo and colour on the middleware's pages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .reader import Reader

__all__ = ["BrandingConfig", "read_branding"]

_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")


@dataclass(frozen=True, kw_only=True, slots=True)
class BrandingConfig:
    #: the logo in the pages' header: a same-origin path ("/static/logo.svg") or an https URL
    logo_url: str = ""
    #: the header, buttons and links colour, "#rgb" or "#rrggbb" ("" keeps the built-in blue)
    primary_color: str = ""

    @property
    def logo_origin(self) -> str | None:
        """The logo's origin when it is on another site (the pages' CSP must allow it)."""
        parts = urlsplit(self.logo_url)
        return f"{parts.scheme}://{parts.netloc}" if parts.scheme == "https" else None


def _valid_logo(value: str) -> bool:
    if value.startswith("/") and not value.startswith("//"):
        return True
    parts = urlsplit(value)
    return parts.scheme == "https" and bool(parts.netloc)


def read_branding(r: Reader) -> BrandingConfig:
    logo = r.string("logo_url", "")
    color = r.string("primary_color", "")
    r.done()
    if logo and (not _valid_logo(logo) or any(c in logo for c in "\"'<> \\")):
        r.error("logo_url", f"expected a path starting with '/' or an https URL, got {logo!r}")
        logo = ""
    if color and not _HEX.fullmatch(color):
        r.error("primary_color", f"expected a hex colour such as '#0f5bb5', got {color!r}")
        color = ""
    return BrandingConfig(logo_url=logo, primary_color=color.lower())
