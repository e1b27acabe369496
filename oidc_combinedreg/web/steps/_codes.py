"""What the phone and email steps share: turning code errors into form errors, a failed send into a
clear page, and the countries of the picker."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError

from ...delivery.base import DeliveryFailed
from ...exceptions import (
    ChallengeExpired,
    CodeReused,
    InvalidInput,
    RateLimited,
    VerificationFailed,
)
from ..i18n import N_
from ..render import Page

__all__ = ["code_error", "countries", "delivery_failed_page", "send_error"]


def code_error(exc: Exception) -> str:
    """The message under the code field (msgids)."""
    if isinstance(exc, InvalidInput):
        return N_("Enter the code we sent you.")
    if isinstance(exc, ChallengeExpired):
        return N_("This code has expired. Send a new one.")
    if isinstance(exc, CodeReused):
        return N_("That code was already used. Send a new one.")
    if isinstance(exc, VerificationFailed):
        return N_("That code didn't work. Check it and try again.")
    return N_("That didn't work. Try again.")


def send_error(exc: RateLimited) -> str:
    if exc.scope == "resend":
        return N_("Wait a moment before asking for another code.")
    return N_("Too many codes were sent. Try again later.")


def delivery_failed_page(name: str, data: dict[str, Any], exc: DeliveryFailed) -> Page:
    """The step's own page with a clear "couldn't send" message; 503 when the provider is down."""
    data["errors"] = {
        "send": N_(
            "We couldn't send the code right now. Try again later, or choose another method."
        )
    }
    if exc.permanent:
        data["errors"]["send"] = N_("We couldn't deliver a code there. Check what you entered.")
    data["delivery_failed"] = True
    return Page(name, data, 400 if exc.permanent else 503, (("Retry-After", "60"),))


@lru_cache(maxsize=8)
def _countries(lang: str) -> tuple[tuple[str, str, int], ...]:
    try:
        names = Locale.parse(lang).territories
    except (ValueError, UnknownLocaleError):
        names = Locale.parse("en").territories
    import phonenumbers  # only where a phone method is offered: the [phone] extra is there

    rows = [
        (region, names.get(region, region), phonenumbers.country_code_for_region(region))
        for region in phonenumbers.SUPPORTED_REGIONS
    ]
    return tuple(sorted(rows, key=lambda r: r[1]))


def countries(lang: str, allowed: frozenset[str]) -> list[dict[str, Any]]:
    """The country picker: ``{"code": "US", "name": "United States", "dial": 1}``, by name."""
    return [
        {"code": code, "name": name, "dial": dial}
        for code, name, dial in _countries(lang)
        if not allowed or code in allowed
    ]
