"""Renaming a method (issue 19.6): ``/methods/<id>/rename`` for every kind with a name of the
user's own (methods/names.py: apps, push devices, hardware tokens, security keys, app passwords).

``GET`` shows the form with the current name; ``POST`` (CSRF) stores the new one through
:meth:`~oidc_combinedreg.service.SecurityInfo.rename_method` (audited ``method.renamed``, the
owner notified). Both sit behind the manage pages' guards: a fresh MFA and the Conditional Access
user action "register security information". A refused name answers 400 with the form, the
error under the field and what the user typed still in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...exceptions import AccessDenied, InvalidInput
from ...methods.kinds import MethodKind
from ...methods.names import NAME_MAX, NAMEABLE
from ...store.base import MethodRecord
from ..render import Page, Redirect
from .common import METHOD_NAMES, display_label
from .signin import require_fresh_mfa

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext

__all__ = ["rename"]


def _form(record: MethodRecord, typed: str, error: str | None = None) -> Page:
    # Security keys keep their own page (and its JSON name) from before every kind had a name.
    name = "webauthn_rename" if record.kind is MethodKind.WEBAUTHN else "method_rename"
    data: dict[str, Any] = {
        "method_id": record.id,
        "kind": record.kind.value,
        "name": METHOD_NAMES[record.kind],
        "max_length": NAME_MAX,
        "errors": {"name": error} if error else {},
        "values": {"name": typed},
        "mode": "manage",
    }
    return Page(name, data, 400 if error else 200)


def rename(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    """``GET|POST /methods/<id>/rename``: name one of the user's methods."""
    if ctx.method == "POST":
        ctx.check_csrf()
    _, user = ctx.require_session()
    blocked = require_fresh_mfa(web, ctx) or web.reg.check_registration_action(ctx, user)
    if blocked is not None:
        return blocked
    record = web.reg.store.get_method(user.id, str(ctx.path_args["method_id"]))
    if record is None or record.kind not in NAMEABLE:
        raise AccessDenied("no such method with a name for this user")
    if ctx.method != "POST":
        return _form(record, display_label(record))
    typed = ctx.form("name")
    try:
        renamed = web.reg.info.rename_method(user.id, record.id, typed, ip=ctx.ip)
    except InvalidInput as exc:
        return _form(record, typed, exc.message)
    if not renamed:  # deleted meanwhile
        raise AccessDenied("no such method with a name for this user")
    return Redirect(web.url("manage", done="renamed"))
