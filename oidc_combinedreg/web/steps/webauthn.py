"""Security key / passkey registration: name it -> touch the key -> done (renaming: views/names.py).

Stages: ``name`` (a form with the key's name; ``action=options`` starts a ceremony) and ``create``
(the page carries the creation options; webauthn.js calls ``navigator.credentials.create`` and posts
the answer with ``action=verify``). With JavaScript the name form is submitted by fetch and the
browser goes straight on to the key; a failed attempt gets a fresh challenge (each is single use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...exceptions import ChallengeExpired, InvalidInput, VerificationFailed
from ...methods.webauthn import clean_label
from ..i18n import N_
from ..render import Page, Redirect

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext

__all__ = ["handle"]

_FAILED = N_("Your security key couldn't be registered. Try again, or use another key.")


def _credential(ctx: RequestContext) -> object:
    value = ctx.fields().get("credential")
    return value if isinstance(value, str | dict) else ""


def _begin(web: WebApp, ctx: RequestContext, step: dict[str, Any], name: str) -> Page:
    _, user = ctx.require_session()
    web.reg.info.webauthn.discard(step.get("challenge"))
    options, key = web.reg.info.webauthn.register_begin(user)
    step.update({"stage": "create", "challenge": key, "options": options, "name": name})
    ctx.touch()
    return _create_page(step)


def _create_page(step: dict[str, Any], error: str | None = None, status: int = 200) -> Page:
    data: dict[str, Any] = {
        "stage": "create",
        "name": step.get("name", ""),
        "options": step.get("options", {}),
        "errors": {"credential": error} if error else {},
        "values": {},
    }
    return Page("webauthn_create", data, status)


def _name_page(errors: dict[str, str] | None = None, name: str = "", status: int = 200) -> Page:
    return Page(
        "webauthn_name",
        {"stage": "name", "errors": errors or {}, "values": {"name": name}},
        status,
    )


def handle(
    web: WebApp, ctx: RequestContext, step: dict[str, Any], action: str
) -> Page | Redirect | None:
    stage = step.setdefault("stage", "name")
    if action == "options":
        typed = ctx.form("name")
        try:
            name = clean_label(typed)
        except InvalidInput as exc:
            return _name_page({"name": exc.message}, typed[:64], 400)
        return _begin(web, ctx, step, name)
    if action == "back" and stage == "create":
        web.reg.info.webauthn.discard(step.pop("challenge", None))
        step.update({"stage": "name"})
        ctx.touch()
        return _name_page(name=str(step.get("name", "")))
    if stage != "create":
        return _name_page()
    if action != "verify":
        return _create_page(step)
    session, user = ctx.require_session()
    try:
        record = web.reg.info.webauthn.register_complete(
            user.id,
            step.pop("challenge", None),
            _credential(ctx),
            label=str(step.get("name", "")),
            ip=ctx.ip,
        )
    except (ChallengeExpired, InvalidInput, VerificationFailed) as exc:
        # The challenge is spent: the next attempt gets a new one.
        _begin(web, ctx, step, str(step.get("name", "")))
        message = _FAILED
        if isinstance(exc, InvalidInput) and "already registered" in exc.message:
            message = exc.message
        return _create_page(step, message, 400)
    step.pop("options", None)
    step["method_id"] = record.id
    step["amr"] = "swk" if record.data.get("backup_eligible") else "hwk"
    ctx.touch()
    return None
