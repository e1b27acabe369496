"""Email addresses for the email method (password reset only, never MFA). No I/O.

Addresses are checked with ``email-validator`` for syntax only: deliverability look-ups (DNS) would be
I/O at request time and a way to probe the network; the code sent to the address proves it works.
"""

from __future__ import annotations

from ..exceptions import InvalidInput

__all__ = ["mask_email", "parse_email", "same_address"]

MAX_INPUT = 254


def parse_email(raw: object) -> str:
    """The normalized address, or :class:`InvalidInput` on ``email``."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_INPUT:
        raise InvalidInput("email", "Enter an email address.")
    # Loaded at the first address typed, not with the package (benchmarks/import_time.py).
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError:
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
