"""Hardware tokens: users do not register them (an admin imports them), they activate them.

The page lists the tokens assigned to the user; entering a token's current code activates it (the
method is then "added"). An event-based (HOTP) token pressed too often is resynchronized with two
consecutive codes, here behind the manage page's MFA gate (SECURITY.md case 28: at AAL2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...exceptions import CodeReused, InvalidInput, VerificationFailed
from ...store.base import MethodRecord
from ..i18n import N_
from ..render import Page

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext
    from ..render import Redirect

__all__ = ["handle"]


def _describe(record: MethodRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "label": record.label,
        "serial": record.data.get("serial", ""),
        "activated": bool(record.data.get("activated")),
        "event_based": record.data.get("oath") == "hotp",
        "digits": int(record.data.get("digits", 6)),
    }


def _error_text(exc: Exception) -> str:
    if isinstance(exc, InvalidInput) and exc.field == "method_id":
        return N_("Choose one of your tokens.")
    if isinstance(exc, InvalidInput):
        return N_("Enter the code shown on the token.")
    if isinstance(exc, CodeReused):
        return N_("That code was already used. Wait for the next code.")
    return N_("That code didn't work. Check the code on the token and try again.")


def handle(
    web: WebApp, ctx: RequestContext, step: dict[str, Any], action: str
) -> Page | Redirect | None:
    _, user = ctx.require_session()
    service = web.reg.info.hardware_oath
    data: dict[str, Any] = {"errors": {}, "values": {}, "notice": None}
    method_id = ctx.form("method_id")
    try:
        if action == "verify":
            record = service.activate(user.id, method_id, ctx.form("code"), ip=ctx.ip)
            step["method_id"] = record.id
            step["amr"] = "otp"
            ctx.touch()
            return None
        if action == "resync":
            service.resync(user.id, method_id, ctx.form("code"), ctx.form("code2"), ip=ctx.ip)
            data["notice"] = N_("The token is synchronized again.")
    except (InvalidInput, VerificationFailed, CodeReused) as exc:
        data["errors"]["code"] = _error_text(exc)
        data["values"]["method_id"] = method_id
    data["tokens"] = [_describe(m) for m in service.tokens(user.id)]
    if not data["tokens"]:
        return Page("hardware_oath_none", data)
    return Page("hardware_oath_activate", data, 400 if data["errors"] else 200)
