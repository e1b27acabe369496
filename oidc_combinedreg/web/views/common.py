"""View helpers shared by the sign-in, wizard and manage pages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...delivery.method_names import KIND_NAMES, N_, added_ordinal
from ...methods.email import mask_email
from ...methods.kinds import METHOD_RULES, MethodKind
from ...methods.names import NAMEABLE
from ...methods.phone import mask_phone
from ...store.base import MethodRecord
from ..i18n import gettext, localized_date

__all__ = ["METHOD_NAMES", "N_", "describe_method", "display_label", "method_detail"]


#: user-facing names of the method kinds (msgids: templates translate them); one table with the
#: notices' names (delivery/method_names.py)
METHOD_NAMES: dict[MethodKind, str] = KIND_NAMES


_PHONES = (MethodKind.MOBILE_PHONE, MethodKind.ALTERNATE_PHONE, MethodKind.OFFICE_PHONE)


def display_label(record: MethodRecord) -> str:
    """What pages show of a method: phone numbers and addresses always masked, whatever the
    stored label says (a page must never reveal a whole number or address); nothing when the
    label is only the kind's English name."""
    phone, email = record.data.get("phone"), record.data.get("email")
    if record.kind in _PHONES and isinstance(phone, str) and phone:
        return mask_phone(phone)
    if record.kind is MethodKind.EMAIL and isinstance(email, str) and email:
        return mask_email(email)
    english = METHOD_NAMES[record.kind]
    if record.label == english:
        # The kind's English name stored as the label (an app named nothing else): the page
        # shows the name, translated, already; the label would repeat it in English.
        return ""
    if record.label.startswith(english + " "):  # "Hardware token HW1", as earlier imports stored it
        return record.label[len(english) + 1 :]
    return record.label


def _ordinal(record: MethodRecord, siblings: Sequence[MethodRecord]) -> int:
    """1, 2, ... when the user has several unnamed methods of this kind added the same (UTC)
    day, in the order added, so that "added 6 Dec 2026" tells them apart; otherwise 0. Only
    that day's group is numbered: deleting another day's method renumbers nothing. The rule
    is the notices' and the admin API's too (delivery/method_names.py)."""
    if display_label(record):
        return 0
    facts = [(m.id, m.kind, m.created_at, bool(display_label(m))) for m in siblings]
    return added_ordinal(record.id, record.kind, record.created_at, facts)


def method_detail(method: Mapping[str, Any]) -> str:
    """What tells a described method apart from others of its kind, in the page's language:
    its label (the user's name for it, a masked number or address), else for a kind a user
    may have several of the day it was added ("added 6 Dec 2026", "#2, added 6 Dec 2026")."""
    if method.get("label"):
        return str(method["label"])
    try:
        several = METHOD_RULES[MethodKind(str(method.get("kind")))].per_user > 1
    except ValueError:
        return ""
    if not several or not method.get("created_at"):
        return ""
    date = localized_date(float(method["created_at"]))
    if method.get("ordinal"):
        return gettext("#%(n)s, added %(date)s") % {"n": method["ordinal"], "date": date}
    return gettext("added %(date)s") % {"date": date}


def describe_method(
    record: MethodRecord, default_id: str | None, siblings: Sequence[MethodRecord] = ()
) -> dict[str, Any]:
    """A JSON-safe view of one method (never a secret; numbers and addresses masked).
    ``siblings``: the user's methods, to number unnamed ones added the same day (``ordinal``);
    ``label`` empty and ``created_at`` with ``ordinal`` is how a JSON client names such a one."""
    rules = METHOD_RULES[record.kind]
    return {
        "id": record.id,
        "kind": record.kind.value,
        "name": METHOD_NAMES[record.kind],
        "label": display_label(record),
        "ordinal": _ordinal(record, siblings),
        "nameable": record.kind in NAMEABLE,
        "mfa": rules.mfa,
        "sspr": rules.sspr,
        "default": record.id == default_id,
        "deletable": rules.deletable,
        "created_at": int(record.created_at),
        "last_used_at": int(record.last_used_at) if record.last_used_at else None,
    }
