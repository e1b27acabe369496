"""Phone numbers for the phone methods: parsing to E.164 with libphonenumber, masking, channels.

No I/O. Numbers are parsed with the user's chosen country (the country picker) unless they typed a
``+`` prefix, and must be valid for that country. Premium-rate, shared-cost, VoIP, personal, pager
and UAN numbers are refused: they are how SMS pumping ("toll fraud") turns a code form into revenue
for an attacker, and no one needs them to receive a sign-in code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING

from ..config.reader import Reader
from ..exceptions import InvalidInput
from .kinds import MethodKind

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "PhoneChannel",
    "PhoneConfig",
    "amr_for",
    "channels_for",
    "mask_phone",
    "parse_phone",
    "read_phone_config",
]

MAX_INPUT = 40


@cache
def _phonenumbers() -> ModuleType:
    """phonenumbers ([phone] extra), loaded when a number is first parsed: a deployment without
    phone methods needs neither the package nor its import time. The config reader refuses a
    phone provider without it (delivery/config.py), so no request gets here without it."""
    from ..extras import require_extra

    require_extra("phone", "phone numbers")
    import phonenumbers

    return phonenumbers


@cache
def _refused_types() -> frozenset[int]:
    t = _phonenumbers().PhoneNumberType
    return frozenset({t.PREMIUM_RATE, t.SHARED_COST, t.VOIP, t.PERSONAL_NUMBER, t.PAGER, t.UAN})


def supported_regions() -> frozenset[str]:
    """The region codes phonenumbers knows; empty without the [phone] extra."""
    from ..extras import missing_extra

    if missing_extra("phone") is not None:
        return frozenset()
    return frozenset(_phonenumbers().SUPPORTED_REGIONS)


class PhoneChannel(StrEnum):
    SMS = "sms"
    VOICE = "voice"


@dataclass(frozen=True, kw_only=True, slots=True)
class PhoneConfig:
    """The ``[methods.phone]`` table."""

    #: the country preselected in the picker (ISO 3166 region code)
    default_region: str = "US"
    #: countries numbers may be in (empty: all)
    allowed_regions: frozenset[str] = frozenset()


def read_phone_config(r: Reader) -> PhoneConfig:
    default = r.string("default_region", "US").upper()
    # Without the [phone] extra the codes cannot be checked; no phone method runs then (a phone
    # provider is refused), so the table's values are not used.
    regions = supported_regions()
    if regions and default not in regions:
        r.error("default_region", f"expected an ISO 3166 region code such as 'US', got {default!r}")
    allowed: set[str] = set()
    for i, code in enumerate(r.str_list("allowed_regions")):
        if regions and code.upper() not in regions:
            r.error("allowed_regions", f"[{i}]: expected an ISO 3166 region code, got {code!r}")
        allowed.add(code.upper())
    if allowed and default not in allowed:
        r.error("default_region", "expected one of allowed_regions")
    r.done()
    return PhoneConfig(default_region=default, allowed_regions=frozenset(allowed))


def parse_phone(
    number: object, region: object, *, allowed_regions: frozenset[str] = frozenset()
) -> str:
    """The number in E.164, or :class:`InvalidInput` on ``number`` with a message for the user."""
    if not isinstance(number, str) or not number.strip() or len(number) > MAX_INPUT:
        raise InvalidInput("number", "Enter a phone number.")
    region_code = region.upper() if isinstance(region, str) else ""
    phonenumbers = _phonenumbers()
    if not number.strip().startswith("+") and region_code not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput("country", "Choose a country or region.")
    try:
        parsed = phonenumbers.parse(number, region_code or None)
    except phonenumbers.NumberParseException:
        raise InvalidInput("number", "This doesn't look like a phone number.") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput("number", "This number isn't valid for the selected country or region.")
    number_region = phonenumbers.region_code_for_number(parsed)
    if allowed_regions and number_region not in allowed_regions:
        raise InvalidInput("number", "Numbers from this country or region can't be used here.")
    if phonenumbers.number_type(parsed) in _refused_types():
        raise InvalidInput(
            "number", "Premium-rate, shared-cost and internet (VoIP) numbers can't be used."
        )
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def mask_phone(e164: str) -> str:
    """``+1 XXXXXXXX00``: the country code and the last two digits, like the original's lists."""
    from ..extras import missing_extra

    if missing_extra("phone") is not None:  # a stored number after the extra was removed
        return "XXXXXXXX" + e164[-2:]
    phonenumbers = _phonenumbers()
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return "XXXXXXXX" + e164[-2:]
    national = str(parsed.national_number)
    return f"+{parsed.country_code} " + "X" * max(len(national) - 2, 0) + national[-2:]


def channels_for(kind: MethodKind) -> tuple[PhoneChannel, ...]:
    """Mobile phones get texts and calls; alternate and office phones calls only."""
    if kind is MethodKind.MOBILE_PHONE:
        return (PhoneChannel.SMS, PhoneChannel.VOICE)
    return (PhoneChannel.VOICE,)


def amr_for(channel: PhoneChannel) -> str:
    """RFC 8176: ``sms`` for a text, ``tel`` for a call."""
    return "sms" if channel is PhoneChannel.SMS else "tel"
