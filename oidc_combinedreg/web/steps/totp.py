"""Authenticator app registration: get the app -> scan the QR code -> try a code -> done."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...exceptions import ChallengeExpired, CodeReused, InvalidInput, VerificationFailed
from ..i18n import N_
from ..render import Page

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext
    from ..render import Redirect

__all__ = ["handle"]


def _setup_data(web: WebApp, ctx: RequestContext, step: dict[str, Any]) -> dict[str, Any]:
    import segno  # QR codes only on the enrolment page (benchmarks/import_time.py)

    session, user = ctx.require_session()
    pending = session.data.setdefault("pending", {})
    account = user.email or user.id
    setup, state = web.reg.info.totp.register_begin(user.id, account, pending.get("totp"))
    if pending.get("totp") != state:
        pending["totp"] = state
        ctx.touch()
    return {
        "secret": setup.secret,
        "account_name": setup.account_name,
        "issuer": setup.issuer,
        "otpauth_uri": setup.uri,
        "_qr_svg": segno.make(setup.uri, error="m").svg_inline(scale=5, dark="#111", light="#fff"),
    }


def handle(
    web: WebApp, ctx: RequestContext, step: dict[str, Any], action: str
) -> Page | Redirect | None:
    stage = step.setdefault("stage", "intro")
    if action == "next" and stage == "intro":
        stage = step["stage"] = "setup"
        ctx.touch()
    elif action == "next" and stage == "setup":
        stage = step["stage"] = "verify"
        ctx.touch()
    elif action == "back" and stage in ("setup", "verify"):
        stage = step["stage"] = "intro" if stage == "setup" else "setup"
        ctx.touch()
    if stage == "intro":
        return Page("totp_intro", {"stage": "intro"})
    if stage == "setup":
        return Page("totp_setup", {"stage": "setup", **_setup_data(web, ctx, step)})
    data: dict[str, Any] = {"stage": "verify", "errors": {}, "values": {}}
    if action != "verify":
        return Page("totp_verify", data)
    session, user = ctx.require_session()
    code = ctx.form("code")
    try:
        record = web.reg.info.totp.register_complete(
            user.id,
            session.data.get("pending", {}).get("totp"),
            code,
            label=ctx.form("label")[:64] or "Authenticator app",
            ip=ctx.ip,
        )
    except ChallengeExpired:
        session.data.get("pending", {}).pop("totp", None)
        step["stage"] = "setup"
        ctx.touch()
        data["errors"]["code"] = N_("The setup expired. Scan the new QR code and try again.")
        return Page("totp_verify", data, 400)
    except (InvalidInput, VerificationFailed, CodeReused) as exc:
        data["errors"]["code"] = (
            N_("Enter the 6-digit code from your app.")
            if isinstance(exc, InvalidInput)
            else N_("That code didn't work. Check the code in your app and try again.")
        )
        data["values"]["code"] = code if len(code) <= 20 else ""
        data["values"]["label"] = ctx.form("label")[:64]
        return Page("totp_verify", data, 400)
    session.data.get("pending", {}).pop("totp", None)
    step["method_id"] = record.id
    step["amr"] = "otp"
    ctx.touch()
    return None
