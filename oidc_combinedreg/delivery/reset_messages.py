"""The password-reset emails: "your password was changed" and "you can't reset it yourself".

Kept beside ``messages.py`` (same translator, same HTML frame) so each stays small. Every
user-facing string is a gettext msgid inside ``_()``.
"""

from __future__ import annotations

import datetime as dt
from html import escape

from .base import EmailMessage
from .messages import translator

__all__ = ["password_reset_email", "reset_unavailable_email"]


def _html(title: str, paragraphs: list[str]) -> str:
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _message(to: str, subject: str, lines: list[str], tag: str) -> EmailMessage:
    return EmailMessage(
        to=to, subject=subject, text="\n\n".join(lines) + "\n", html=_html(subject, lines), tag=tag
    )


def password_reset_email(
    *, to: str, org: str, at: float, ip: str | None, lang: str = "en"
) -> EmailMessage:
    """Sent to every address of the user after a self-service password reset."""
    _ = translator(lang)
    when = dt.datetime.fromtimestamp(at, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        _("The password of your %(org)s account was reset.") % {"org": org},
        _("When: %(when)s") % {"when": when},
        _("From IP address: %(ip)s") % {"ip": ip or _("unknown")},
        _("We signed your account out everywhere."),
        _("If this wasn't you, contact your administrator right away."),
    ]
    return _message(to, _("Your %(org)s password was changed") % {"org": org}, lines, "reset")


def reset_unavailable_email(*, to: str, org: str, lang: str = "en") -> EmailMessage:
    """Sent when someone asks to reset the password of an account that can't do it itself.

    The page never says so (it would tell anyone which accounts exist): the owner reads it here.
    """
    _ = translator(lang)
    lines = [
        _("Someone, maybe you, asked to reset the password of your %(org)s account.")
        % {"org": org},
        _(
            "Your account can't reset its password itself: it isn't enabled for self-service "
            "password reset, or it doesn't have enough security info registered."
        ),
        _("Contact your administrator to reset your password."),
        _("If this wasn't you, you can ignore this email."),
    ]
    return _message(
        to, _("Resetting your %(org)s password") % {"org": org}, lines, "reset_unavailable"
    )
