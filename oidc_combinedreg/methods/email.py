"""Email addresses for the email method (password reset only, never MFA). No I/O.

Addresses are checked with ``email-validator`` for syntax only: deliverability look-ups (DNS) would be
I/O at request time and a way to probe the network; the code sent to the address proves it works.
"""

from __future__ import annotations

from ..exceptions import InvalidInput

__all__ = ["SPECIAL_USE_MESSAGE", "mask_email", "parse_email", "same_address"]

MAX_INPUT = 254


def N_(msgid: str) -> str:  # noqa: N802 - gettext's "mark for extraction only"
    return msgid


#: RFC 6761 special-use names no mail is delivered to (``email_validator.SPECIAL_USE_DOMAIN_NAMES``);
#: marked for extraction, as InvalidInput's keyword sees only literal messages
SPECIAL_USE_MESSAGE = N_(
    "This address is at a reserved domain (such as .test, .local or .localhost) that can't "
    "receive email. Enter another address."
)


def parse_email(raw: object, *, allow_test_domains: bool = False) -> str:
    """The normalized address, or :class:`InvalidInput` on ``email``. ``allow_test_domains``
    (development mode): accept the RFC 6761 ``.test`` domain, that of every demo user."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_INPUT:
        raise InvalidInput("email", "Enter an email address.")
    # Loaded at the first address typed, not with the package (benchmarks/import_time.py).
    from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

    typed = raw.strip()
    try:
        result = validate_email(
            typed, check_deliverability=False, test_environment=allow_test_domains
        )
    except EmailNotValidError:
        # Say why a well-formed address at a reserved name is refused ("alice@example.test").
        domain = typed.rpartition("@")[2].rstrip(".").lower()
        special = [d for d in SPECIAL_USE_DOMAIN_NAMES if not (allow_test_domains and d == "test")]
        if typed.count("@") == 1 and any(domain == d or domain.endswith("." + d) for d in special):
            raise InvalidInput("email", SPECIAL_USE_MESSAGE) from None
        raise InvalidInput("email", "Enter a valid email address, like name@example.com.") from None
    return str(result.normalized)


def same_address(a: str | None, b: str | None) -> bool:
    """Case-insensitive comparison (the local part is case-sensitive in theory, never in practice)."""
    return a is not None and b is not None and a.casefold() == b.casefold()


def mask_email(address: str) -> str:
    """``a••••@example.com``: enough to recognize one's own address, not to learn it."""
    local, _, domain = address.rpartition("@")
    if not local:
        return "•••"
    return local[0] + "•" * min(max(len(local) - 1, 3), 8) + "@" + domain
