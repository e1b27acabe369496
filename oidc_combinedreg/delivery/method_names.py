"""A method's name as people read it outside a page: "Authenticator app (added 6 Dec 2026)".

The pages compose the same name from their JSON (``web/views/common.py``); the change notices
(email) and the admin API have no page, so they compose it here, in the language they are given.
A method the user named shows that name; phones and email are named by their stored (masked)
value; an unnamed method of a kind a user may hold several of is told apart by the day it was
added, numbered ("#2, added ...") when several unnamed ones of that kind were added the same UTC
day (decision 145). Nothing here is stored: the default is computed when the name is shown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from babel.dates import format_date

from ..methods.kinds import METHOD_RULES, MethodKind
from .messages import translator

__all__ = ["KIND_NAMES", "added_ordinal", "display_name", "is_named", "method_detail_text"]


def N_(msgid: str) -> str:  # noqa: N802 - gettext's "mark for extraction only"
    return msgid


#: the kinds' names (msgids; the pages' METHOD_NAMES are the same strings)
KIND_NAMES: dict[MethodKind, str] = {
    MethodKind.PUSH: N_("Authenticator app (notification)"),
    MethodKind.TOTP: N_("Authenticator app"),
    MethodKind.HARDWARE_OATH: N_("Hardware token"),
    MethodKind.MOBILE_PHONE: N_("Phone"),
    MethodKind.ALTERNATE_PHONE: N_("Alternate phone"),
    MethodKind.OFFICE_PHONE: N_("Office phone"),
    MethodKind.EMAIL: N_("Email"),
    MethodKind.SECURITY_QUESTIONS: N_("Security questions"),
    MethodKind.APP_PASSWORD: N_("App password"),
    MethodKind.WEBAUTHN: N_("Security key or passkey"),
}


def is_named(kind: MethodKind, label: str) -> bool:
    """Whether ``label`` names the method (a stored label that is only the kind's English name,
    as older apps were stored, names nothing)."""
    return bool(label) and label != KIND_NAMES[kind]


def _day(at: float) -> dt.date:
    return dt.datetime.fromtimestamp(at, dt.UTC).date()


def added_ordinal(
    method_id: str,
    kind: MethodKind,
    created_at: float,
    siblings: Sequence[tuple[str, MethodKind, float, bool]],
) -> int:
    """1, 2, ... for an unnamed method when the user has several unnamed ones of its kind added
    the same UTC day, in the order added; otherwise 0. ``siblings``: (id, kind, created_at,
    named) of the user's methods, this one among them."""
    if METHOD_RULES[kind].per_user < 2:
        return 0
    day = _day(created_at)
    same = sorted(
        (at, sid)
        for sid, skind, at, named in siblings
        if skind is kind and not named and _day(at) == day
    )
    ids = [sid for _, sid in same]
    return ids.index(method_id) + 1 if len(ids) > 1 and method_id in ids else 0


def method_detail_text(
    kind: MethodKind, label: str, created_at: float | None, ordinal: int, lang: str
) -> str:
    """What tells the method apart from others of its kind, in ``lang``: its name, else for a
    kind a user may hold several of the day it was added; "" when nothing does."""
    if is_named(kind, label):
        return label
    if METHOD_RULES[kind].per_user < 2 or not created_at:
        return ""
    _ = translator(lang)
    date = format_date(_day(created_at), "medium", locale=lang)
    if ordinal:
        return _("#%(n)s, added %(date)s") % {"n": ordinal, "date": date}
    return _("added %(date)s") % {"date": date}


def display_name(
    kind: MethodKind, label: str, created_at: float | None, ordinal: int = 0, lang: str = "en"
) -> str:
    """The kind's name in ``lang`` with what tells it apart: "Authenticator app (added 6 Dec
    2026)", "Phone (+1 XXXXXXXX67)", "Security questions"."""
    name = translator(lang)(KIND_NAMES[kind])
    detail = method_detail_text(kind, label, created_at, ordinal, lang)
    return f"{name} ({detail})" if detail else name
