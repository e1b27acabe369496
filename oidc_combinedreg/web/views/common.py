"""View helpers shared by the sign-in, wizard and manage pages."""

from __future__ import annotations

from typing import Any

from ...methods.email import mask_email
from ...methods.kinds import METHOD_RULES, MethodKind
from ...methods.phone import mask_phone
from ...store.base import MethodRecord

__all__ = ["METHOD_NAMES", "N_", "describe_method", "display_label"]


def N_(msgid: str) -> str:  # noqa: N802 - the gettext convention for "mark for extraction only"
    return msgid


#: user-facing names of the method kinds (msgids: templates translate them)
METHOD_NAMES: dict[MethodKind, str] = {
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
    if record.label == METHOD_NAMES[record.kind]:
        # The kind's English name stored as the label (an app named nothing else): the page
        # shows the name, translated, already; the label would repeat it in English.
        return ""
    return record.label


def describe_method(record: MethodRecord, default_id: str | None) -> dict[str, Any]:
    """A JSON-safe view of one method (never a secret; numbers and addresses masked)."""
    rules = METHOD_RULES[record.kind]
    return {
        "id": record.id,
        "kind": record.kind.value,
        "name": METHOD_NAMES[record.kind],
        "label": display_label(record),
        "mfa": rules.mfa,
        "sspr": rules.sspr,
        "default": record.id == default_id,
        "deletable": rules.deletable,
        "created_at": int(record.created_at),
        "last_used_at": int(record.last_used_at) if record.last_used_at else None,
    }
