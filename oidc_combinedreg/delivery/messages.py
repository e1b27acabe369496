"""The messages oidc_combinedreg sends, localized: code emails (text + HTML), texts, calls, notices.

Every user-facing string is a gettext msgid inside ``_()`` so ``pybabel extract`` finds it; the
catalogs are the web pages' own (``web/translations``, domain ``messages``). Values put into the HTML
part are escaped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from html import escape

from babel.support import NullTranslations

from .base import EmailMessage, TextMessage, VoiceMessage

__all__ = [
    "change_sentence",
    "code_email",
    "code_text",
    "code_voice",
    "security_info_changed_email",
    "translator",
]


def _translations(lang: str) -> NullTranslations:
    # The pages' loader: it reads the .po catalogs (no compile step) and caches them.
    from ..web.i18n import translations

    return translations(lang)


def translator(lang: str) -> Callable[[str], str]:
    """``gettext`` for ``lang`` (English, the msgids, when there is no catalog)."""
    return _translations(lang).gettext


def _html(title: str, paragraphs: list[str], *, link: tuple[str, str] | None = None) -> str:
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    if link is not None:
        body += f'<p><a href="{escape(link[1])}">{escape(link[0])}</a></p>'
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def code_email(*, to: str, code: str, org: str, minutes: int, lang: str = "en") -> EmailMessage:
    """The "your verification code" email (registering an address, or a password reset)."""
    _ = translator(lang)
    subject = _("Your %(org)s verification code") % {"org": org}
    lines = [
        _("Your verification code is: %(code)s") % {"code": code},
        _("It expires in %(minutes)s minutes.") % {"minutes": minutes},
        _("If you didn't ask for this code, you can ignore this email. Never share the code."),
    ]
    return EmailMessage(
        to=to,
        subject=subject,
        text="\n\n".join(lines) + "\n",
        html=_html(subject, lines),
        tag="code",
    )


def code_text(*, to: str, code: str, org: str, minutes: int, lang: str = "en") -> TextMessage:
    _ = translator(lang)
    body = _("%(org)s: your verification code is %(code)s. It expires in %(minutes)s minutes.") % {
        "org": org,
        "code": code,
        "minutes": minutes,
    }
    return TextMessage(to=to, body=body, tag="code", code=code, lang=lang)


def code_voice(*, to: str, code: str, org: str, lang: str = "en") -> VoiceMessage:
    """Digits said one by one, twice, so they are heard over a bad line."""
    _ = translator(lang)
    digits = ", ".join(code)
    say = _("This is %(org)s. Your verification code is %(digits)s. Again: %(digits)s.") % {
        "org": org,
        "digits": digits,
    }
    return VoiceMessage(to=to, say=say, tag="code", code=code, lang=lang)


def security_info_changed_email(
    *,
    to: str,
    org: str,
    what: str,
    at: float,
    ip: str | None,
    not_me_url: str | None,
    lang: str = "en",
) -> EmailMessage:
    """The notice sent for every add, change and delete. ``what`` is already translated."""
    _ = translator(lang)
    subject = _("Your %(org)s security info changed") % {"org": org}
    when = dt.datetime.fromtimestamp(at, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        what,
        _("When: %(when)s") % {"when": when},
        _("From IP address: %(ip)s") % {"ip": ip or _("unknown")},
        _("If this was you, there is nothing to do."),
    ]
    link: tuple[str, str] | None = None
    if not_me_url:
        label = _("This wasn't me")
        lines_text = [*lines, _("If this wasn't you, open this link to secure your account:")]
        text = "\n\n".join([*lines_text, not_me_url]) + "\n"
        link = (label, not_me_url)
    else:
        text = "\n\n".join(lines) + "\n"
    return EmailMessage(
        to=to,
        subject=subject,
        text=text,
        html=_html(subject, lines, link=link),
        tag="security_info_changed",
    )


def change_sentence(change: str, method_name: str, detail: str, lang: str = "en") -> str:
    """The sentence "Phone (+1 XXXXXXX00) was added." in ``lang`` (``method_name`` is a msgid)."""
    _ = translator(lang)
    # A label that is only the kind's English name (an app registered without one) would
    # repeat the name, untranslated: "Authentifizierungs-App (Authenticator app)".
    shown = detail if detail and detail != method_name else ""
    name = _(method_name) + (f" ({shown})" if shown else "")
    sentences = {
        "added": _("%(method)s was added to your account."),
        "changed": _("%(method)s was changed on your account."),
        "deleted": _("%(method)s was removed from your account."),
        "restored": _("%(method)s was restored to your account by your administrator."),
    }
    return sentences.get(change, sentences["changed"]) % {"method": name}
