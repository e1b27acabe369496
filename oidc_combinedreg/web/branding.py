"""The host's colour and logo: a small generated stylesheet and the pages' Content-Security-Policy.

The colour goes into ``brand.css`` (served under ``/static/``), never inline: the CSP allows no
inline style. Text on the brand colour is white or near-black, whichever contrasts more (WCAG 2
relative luminance), so a light brand colour still gives readable buttons.
"""

from __future__ import annotations

from ..config.branding import BrandingConfig

__all__ = ["brand_css", "content_security_policy", "contrast_ratio"]

_DARK_INK = "#111111"


def _rgb(color: str) -> tuple[float, float, float]:
    hexa = color.lstrip("#")
    if len(hexa) == 3:
        hexa = "".join(c * 2 for c in hexa)
    r, g, b = (int(hexa[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return r, g, b


def _luminance(color: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in _rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two hex colours (1 to 21)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def brand_css(branding: BrandingConfig) -> str:
    """Custom properties overriding the built-in colours; empty when none is configured."""
    color = branding.primary_color
    if not color:
        return ""
    ink = (
        "#ffffff"
        if contrast_ratio(color, "#ffffff") >= contrast_ratio(color, _DARK_INK)
        else _DARK_INK
    )
    # Links and outlines sit on white: use the brand colour there only when it is readable.
    link = color if contrast_ratio(color, "#ffffff") >= 4.5 else "var(--ink)"
    return f":root {{ --brand: {color}; --brand-ink: {ink}; --link: {link}; }}\n"


def content_security_policy(branding: BrandingConfig) -> str:
    img = "'self' data:"
    if branding.logo_origin:
        img += " " + branding.logo_origin
    return (
        f"default-src 'self'; img-src {img}; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"  # no form-action: see _SECURITY_HEADERS in app.py
    )
