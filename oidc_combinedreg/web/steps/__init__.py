"""Per-method registration steps, shared by the wizard (interrupt mode) and manage mode.

Each handler drives one method's stages (intro -> setup -> verify -> added) and returns a page,
a redirect, or ``None`` when the method was registered. Adding a method kind means adding a
module here and an entry in :data:`HANDLERS`: the wizard and the manage page stay method-agnostic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...methods.kinds import MethodKind
from . import app_password, email, hardware_oath, phone, push, questions, totp, webauthn

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext
    from ..render import Page, Redirect

__all__ = ["HANDLERS", "StepHandler", "registrable"]

#: (web, ctx, step state, action) -> a page to show, or None once the method is registered
StepHandler = Callable[["WebApp", "RequestContext", dict[str, Any], str], "Page | Redirect | None"]


def registrable(web: WebApp) -> frozenset[MethodKind]:
    """Kinds with a registration step that this deployment can serve (phones and email need a
    delivery provider; push needs an app users can install, ``[methods.push] app_name``): what the
    planner may propose and manage mode may offer. Devices already registered keep working."""
    kinds = frozenset(HANDLERS) & web.reg.info.available_kinds()
    if not web.config.push.offered:
        kinds -= {MethodKind.PUSH}
    return kinds


HANDLERS: dict[MethodKind, StepHandler] = {
    MethodKind.MOBILE_PHONE: phone.handle_mobile,
    MethodKind.ALTERNATE_PHONE: phone.handle_alternate,
    MethodKind.EMAIL: email.handle,
    MethodKind.SECURITY_QUESTIONS: questions.handle,
    MethodKind.TOTP: totp.handle,
    MethodKind.WEBAUTHN: webauthn.handle,
    MethodKind.APP_PASSWORD: app_password.handle,
    MethodKind.PUSH: push.handle,
    MethodKind.HARDWARE_OATH: hardware_oath.handle,
}
