"""Manage mode ("My security info"): list, add, change, delete, the default, sign out everywhere.

Every page and action here sits behind the MFA gate (:func:`~.signin.require_fresh_mfa`) and the
Conditional Access user action "register security information". Users outside combined
registration (legacy mode) see their MFA methods and their password-reset methods as two pages
(``?part=mfa``, the default, and ``?part=sspr``).

A method kind gets a "Change" link when the methods table says it is changeable and its step can
change: phones and email run their own registration step with ``step["replace"]`` set to the
method's id (the old value stays until the new one is verified); another kind may export
``change(web, ctx, step, action)`` from its step module, a step handler that finds the id in
``step["replace"]`` and returns None once the method was changed. Security keys are renamed on their
own page (``webauthn_rename``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from ...exceptions import AccessDenied
from ...methods.kinds import METHOD_RULES, MethodKind
from ...policy.compliance import (
    ReplaceFirst,
    Shortfall,
    UserFacts,
    delete_shortfalls,
    kinds_that_fix,
)
from ...store.base import MethodRecord
from ..render import Page, Redirect
from ..steps import HANDLERS, StepHandler, registrable
from .common import METHOD_NAMES, describe_method
from .signin import require_fresh_mfa

if TYPE_CHECKING:
    from ...directory import DirectoryUser
    from ..app import WebApp
    from ..context import RequestContext

__all__ = [
    "add",
    "change",
    "change_handler",
    "delete",
    "delete_reported",
    "overview",
    "set_default",
    "signout_everywhere",
]

_PARTS = ("all", "mfa", "sspr")


# -- guards and helpers ------------------------------------------------------------------------


def _guard(web: WebApp, ctx: RequestContext) -> Page | Redirect | None:
    _, user = ctx.require_session()
    gate = require_fresh_mfa(web, ctx)
    if gate is not None:
        return gate
    return web.reg.check_registration_action(ctx, user)


def _legacy(web: WebApp, user: DirectoryUser) -> bool:
    return not web.config.policies.combined_registration.applies(user.groups)


def _part(web: WebApp, ctx: RequestContext, user: DirectoryUser) -> str:
    """Which methods the page is about: all (combined), or mfa / sspr (legacy mode)."""
    if not _legacy(web, user):
        return "all"
    return "sspr" if ctx.arg("part") == "sspr" else "mfa"


def _in_part(kind: MethodKind, part: str, web: WebApp) -> bool:
    rules = METHOD_RULES[kind]
    if part == "mfa":
        return rules.mfa or kind is MethodKind.APP_PASSWORD
    if part == "sspr":
        return rules.sspr and kind in web.config.policies.sspr.methods
    return True


#: kinds whose registration step changes a method when ``step["replace"]`` names it
_CHANGED_BY_REPLACING = frozenset(
    {MethodKind.MOBILE_PHONE, MethodKind.ALTERNATE_PHONE, MethodKind.EMAIL}
)


def change_handler(kind: MethodKind) -> StepHandler | None:
    """The kind's own change step, if it has one."""
    handler = HANDLERS.get(kind)
    if handler is None:
        return None
    found = getattr(sys.modules.get(handler.__module__), "change", None)
    if callable(found):
        return found  # type: ignore[no-any-return]
    return handler if kind in _CHANGED_BY_REPLACING else None


def _change_url(web: WebApp, record: MethodRecord) -> str | None:
    if not METHOD_RULES[record.kind].changeable or record.kind is MethodKind.OFFICE_PHONE:
        return None
    if record.kind is MethodKind.WEBAUTHN or change_handler(record.kind) is not None:
        return web.url("change", method_id=record.id)
    return None


def _stored(web: WebApp, user_id: str, method_id: str) -> MethodRecord:
    """One of *this user's* stored methods; anything else (another user's id) is refused."""
    record = web.reg.store.get_method(user_id, method_id)
    if record is None:
        raise AccessDenied("no such method for this user")
    return record


def _describe(
    web: WebApp,
    record: MethodRecord,
    default_id: str | None,
    refused: tuple[Shortfall, ...] = (),
    siblings: list[MethodRecord] | None = None,
) -> dict[str, Any]:
    """One method of the list. ``refused``: what deleting it would break (the policy's answer,
    :func:`~oidc_combinedreg.policy.compliance.delete_shortfalls`); then it is not offered for
    deletion: the link goes to the delete page, which says what to add first (replace first)."""
    data = describe_method(record, default_id, siblings or ())
    data["change_url"] = _change_url(web, record)
    data["rename_url"] = web.url("rename", method_id=record.id) if data["nameable"] else None
    kind_allows = METHOD_RULES[record.kind].deletable
    data["deletable"] = kind_allows and not refused
    data["delete_refused"] = [str(s) for s in refused] if kind_allows else []
    url = web.url("delete", method_id=record.id) if kind_allows else None
    data["delete_url"] = url if data["deletable"] else None
    data["replace_first_url"] = url if refused and kind_allows else None
    return data


def _refusals(
    web: WebApp, user: DirectoryUser, methods: list[MethodRecord]
) -> dict[str, tuple[Shortfall, ...]]:
    """What deleting each method would break, by id: the service's own check (one policy
    function, no store call), so the list never offers a delete that answers 409."""
    facts = UserFacts(user_id=user.id, groups=user.groups, per_user_mfa=user.per_user_mfa)
    policies = web.config.policies
    return {m.id: delete_shortfalls(methods, m.id, facts, policies) for m in methods}


def _addable(web: WebApp, ctx: RequestContext, part: str = "all") -> list[dict[str, str]]:
    _, user = ctx.require_session()
    methods = web.reg.info.methods(user.id)
    have = [m.kind for m in methods]
    out = []
    for kind in sorted(registrable(web), key=lambda k: METHOD_RULES[k].rank):
        if not _in_part(kind, part, web):
            continue
        if not web.config.policies.method_allowed(kind, user.id, user.groups):
            continue
        if have.count(kind) >= METHOD_RULES[kind].per_user:
            continue
        if kind is MethodKind.APP_PASSWORD and not web.reg.info.app_passwords.may_register(user):
            continue
        if kind is MethodKind.SECURITY_QUESTIONS and not _questions_usable(web, user.groups):
            continue
        out.append({"kind": kind.value, "name": METHOD_NAMES[kind]})
    return out


def _at_limit(web: WebApp, ctx: RequestContext, raw_kind: str) -> Page | None:
    """The page that says the limit (issue 19.8) when ``raw_kind`` is refused only because the
    user already has as many as allowed; None when it is refused for another reason."""
    _, user = ctx.require_session()
    try:
        kind = MethodKind(raw_kind)
    except ValueError:
        return None
    if kind not in registrable(web):
        return None
    if not web.config.policies.method_allowed(kind, user.id, user.groups):
        return None
    limit = METHOD_RULES[kind].per_user
    have = sum(1 for m in web.reg.info.methods(user.id) if m.kind is kind)
    if have < limit:
        return None
    return Page(
        "method_limit", {"kind": kind.value, "name": METHOD_NAMES[kind], "limit": limit}, 409
    )


def _questions_usable(web: WebApp, groups: frozenset[str]) -> bool:
    """Could a password reset ever use security questions? (They serve nothing else.) The reset
    needs SSPR for the user, questions among its methods, and either a second method or
    ``allow_questions_alone`` (the rule of policy/reset.py's ``offered_choices``)."""
    sspr = web.config.policies.sspr
    return (
        sspr.applies(groups)
        and MethodKind.SECURITY_QUESTIONS in sspr.methods
        and (sspr.methods_required >= 2 or sspr.allow_questions_alone)
    )


def _return_to(web: WebApp, ctx: RequestContext) -> str | None:
    """Back to a sign-in in progress (the re-confirm page's "Change" opens manage mode)."""
    if ctx.cid is None or ctx.session is None:
        return None
    if web.reg.flow.continuation(ctx.session, ctx.cid) is None:
        return None
    return web.url("signin", c=ctx.cid)


# -- pages ---------------------------------------------------------------------------------------


def overview(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    """``GET /``: "Security info" (legacy mode: ``?part=mfa`` or ``?part=sspr``)."""
    blocked = _guard(web, ctx)
    if blocked is not None:
        return blocked
    _, user = ctx.require_session()
    part = _part(web, ctx, user)
    methods = web.reg.info.methods(user.id)
    default = web.reg.info.default_method(user.id, methods)
    default_id = default.id if default else None
    shown = [m for m in methods if _in_part(m.kind, part, web)]
    refusals = _refusals(web, user, methods)
    sspr = web.config.policies.sspr
    return Page(
        "manage",
        {
            "mode": "legacy" if part != "all" else "combined",
            "part": part,
            "methods": [_describe(web, m, default_id, refusals[m.id], methods) for m in shown],
            "default": describe_method(default, default_id, methods) if default else None,
            "default_changeable": len(_default_choices(methods)) > 1,
            "addable": _addable(web, ctx, part),
            "reported": [
                _describe_reported(web, m) for m in web.reg.info.reported_methods(user.id)
            ],
            "sspr_required": sspr.methods_required if sspr.applies(user.groups) else 0,
            "notice": ctx.arg("done") or None,
            "notice_method": _notice_method(ctx),
            "return_to": _return_to(web, ctx),
        },
    )


#: where the name of the method just added or deleted waits for the next page's banner
_NOTICE_METHOD = "notice_method"


def _remember_for_notice(ctx: RequestContext, done: str, described: dict[str, Any]) -> None:
    """Keep the method's name for the banner of the list ("Authenticator app (#1, added ...)
    was deleted."): in the session, never the URL (a name the user chose is theirs)."""
    session, _ = ctx.require_session()
    session.data[_NOTICE_METHOD] = {"done": done, "method": described}
    ctx.touch()


def _notice_method(ctx: RequestContext) -> dict[str, Any] | None:
    """The method the banner after an add or a delete names, shown once."""
    if ctx.session is None or _NOTICE_METHOD not in ctx.session.data:
        return None
    kept: dict[str, Any] = ctx.session.data.pop(_NOTICE_METHOD)
    ctx.touch()
    return dict(kept["method"]) if kept.get("done") == ctx.arg("done") else None


def add(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    """``/add/<kind>``: the kind's registration steps, as in the wizard; back here when done."""
    blocked = _guard(web, ctx)
    if blocked is not None:
        return blocked
    session, user = ctx.require_session()
    raw_kind = str(ctx.path_args["kind"])
    allowed = {a["kind"] for a in _addable(web, ctx)}
    in_progress = session.data.get("manage_add", {}).get("kind") == raw_kind
    # A step already under way may finish even if the limit was reached meanwhile (a push device
    # registers itself before the browser shows the confirmation); the store enforces the limit.
    if raw_kind not in allowed and not in_progress:
        limited = _at_limit(web, ctx, raw_kind)
        if limited is not None:
            return limited
        raise AccessDenied("method not addable")
    kind = MethodKind(raw_kind)
    state: dict[str, Any] = session.data.setdefault("manage_add", {})
    if state.get("kind") != kind.value:
        state.clear()
        state.update({"kind": kind.value, "step": {}})
        ctx.touch()
    action = ""
    if ctx.method == "POST":
        ctx.check_csrf()
        action = ctx.form("action")
    result = HANDLERS[kind](web, ctx, state["step"], action)
    if result is None:
        amr = state["step"].get("amr")
        session = ctx.session or session
        session.data.pop("manage_add", None)
        if amr:
            # As in the wizard (decisions.md #2): verifying a new MFA method proves possession,
            # so it counts as MFA now (a new session id; the gate's window starts here).
            new = web.reg.sessions.rotate(session)
            web.reg.flow.mark_mfa(
                new,
                [str(a) for a in (amr if isinstance(amr, list) else [amr])],
                ctx.now,
                phishing_resistant=METHOD_RULES[kind].phishing_resistant,
            )
            ctx.session = new
        ctx.touch()
        added = web.reg.store.get_method(user.id, str(state["step"].get("method_id")))
        if added is not None:
            methods = web.reg.info.methods(user.id)
            _remember_for_notice(ctx, "added", describe_method(added, None, methods))
        return Redirect(web.url("manage", done="added"))
    if isinstance(result, Page):
        result.data["progress"] = None
        result.data["mode"] = "manage"
    return result


def change(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    """``/methods/<id>/change``: the kind's own change step (security keys: rename)."""
    blocked = _guard(web, ctx)
    if blocked is not None:
        return blocked
    session, user = ctx.require_session()
    record = _stored(web, user.id, str(ctx.path_args["method_id"]))
    if _change_url(web, record) is None:
        raise AccessDenied("this method can't be changed")
    if record.kind is MethodKind.WEBAUTHN:
        data = {"method_id": record.id, "errors": {}, "values": {"name": record.label}}
        return Page("webauthn_rename", {**data, "mode": "manage"})
    handler = change_handler(record.kind)
    assert handler is not None
    state: dict[str, Any] = session.data.setdefault("manage_change", {})
    if state.get("method_id") != record.id:
        state.clear()
        state.update({"method_id": record.id, "step": {"replace": record.id}})
        ctx.touch()
    action = ""
    if ctx.method == "POST":
        ctx.check_csrf()
        action = ctx.form("action")
    result = handler(web, ctx, state["step"], action)
    if result is None:
        session.data.pop("manage_change", None)
        ctx.touch()
        return Redirect(web.url("manage", done="changed"))
    if isinstance(result, Page):
        result.data.update({"progress": None, "mode": "manage", "changing": record.id})
    return result


def _refusal(
    web: WebApp, user: DirectoryUser, record: MethodRecord, exc: ReplaceFirst, addable: list[Any]
) -> dict[str, Any]:
    methods = web.reg.info.methods(user.id)
    facts = UserFacts(user_id=user.id, groups=user.groups, per_user_mfa=user.per_user_mfa)
    offered = {a["kind"]: a for a in addable}
    policies = web.config.policies
    each = {
        s: [offered[k.value] for k in kinds_that_fix(s, methods, record.id, facts, policies)
            if k.value in offered]
        for s in exc.shortfalls
    }  # fmt: skip
    # Suggest what closes every gap (issue 19.9: a security key signs in but never resets a
    # password, so it does not let the delete of a user's last app through). When no one method
    # does, the page lists one choice per gap ("add_each") instead.
    first, *rest = list(each.values()) or [[]]
    fixes = [a for a in first if all(a in other for other in rest)]
    return {
        "shortfalls": [str(s) for s in exc.shortfalls],
        "add_first": fixes,
        "add_each": {} if fixes else {str(s): kinds for s, kinds in each.items() if kinds},
    }


def delete(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    """``GET /methods/<id>/delete`` asks, naming the method; ``POST`` deletes (replace before
    remove: a delete that would break a policy is refused with what to add first, status 409)."""
    if ctx.method == "POST":
        ctx.check_csrf()
    blocked = _guard(web, ctx)
    if blocked is not None:
        return blocked
    _, user = ctx.require_session()
    record = _stored(web, user.id, str(ctx.path_args["method_id"]))
    if not METHOD_RULES[record.kind].deletable:
        raise AccessDenied("this method can't be deleted")
    methods = web.reg.info.methods(user.id)
    default = web.reg.info.default_method(user.id, methods)
    data: dict[str, Any] = {
        "method": _describe(web, record, default.id if default else None, (), methods),
        "refused": None,
    }
    if ctx.method != "POST":
        # The page says at once what the delete would answer (replace first), not after a POST.
        shortfalls = _refusals(web, user, methods)[record.id]
        if shortfalls:
            data["refused"] = _refusal(
                web, user, record, ReplaceFirst(shortfalls), _addable(web, ctx)
            )
            data["method"] = _describe(
                web, record, default.id if default else None, shortfalls, methods
            )
        return Page("manage_delete", data)
    try:
        deleted = web.reg.info.delete_method(user.id, record.id, ip=ctx.ip)
    except ReplaceFirst as exc:
        data["refused"] = _refusal(web, user, record, exc, _addable(web, ctx))
        data["method"] = _describe(
            web, record, default.id if default else None, exc.shortfalls, methods
        )
        return Page("manage_delete", {**data, "error": "replace_first"}, 409)
    if not deleted:
        raise AccessDenied("no such method for this user")
    _remember_for_notice(ctx, "deleted", describe_method(record, None, methods))
    return Redirect(web.url("manage", done="deleted"))


def _describe_reported(web: WebApp, record: MethodRecord) -> dict[str, Any]:
    """A method the user reported as not theirs ("This wasn't me"): out of use, to delete."""
    data = describe_method(record, None)
    data.update(
        reported=True,
        reported_at=int(record.reported_at or 0),
        delete_url=web.url("delete_reported", method_id=record.id),
    )
    return data


def delete_reported(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    """``POST /methods/<id>/delete-reported``: delete a method the user reported as not theirs
    (SECURITY.md case 59). It counts for no policy already, so no replace-first check."""
    if ctx.method != "POST":
        return Redirect(web.url("manage"))
    ctx.check_csrf()
    blocked = _guard(web, ctx)
    if blocked is not None:
        return blocked
    _, user = ctx.require_session()
    if not web.reg.info.delete_reported(user.id, str(ctx.path_args["method_id"]), ip=ctx.ip):
        raise AccessDenied("no such reported method for this user")
    return Redirect(web.url("manage", done="deleted"))


def _default_choices(methods: list[MethodRecord]) -> list[MethodRecord]:
    """MFA-capable methods the user stored (the directory's office phone can't be stored)."""
    return [
        m for m in methods if METHOD_RULES[m.kind].mfa and m.kind is not MethodKind.OFFICE_PHONE
    ]


def set_default(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    """``GET /default`` lists the MFA-capable methods; ``POST`` (``method_id``) makes one the
    default."""
    if ctx.method == "POST":
        ctx.check_csrf()
    blocked = _guard(web, ctx)
    if blocked is not None:
        return blocked
    _, user = ctx.require_session()
    methods = web.reg.info.methods(user.id)
    default = web.reg.info.default_method(user.id, methods)
    default_id = default.id if default else None
    if ctx.method != "POST":
        choices = [_describe(web, m, default_id, (), methods) for m in _default_choices(methods)]
        return Page("manage_default", {"choices": choices, "default_id": default_id})
    if not web.reg.info.set_default(user.id, ctx.form("method_id"), ip=ctx.ip):
        raise AccessDenied("no such MFA method for this user")
    return Redirect(web.url("manage", done="default"))


def signout_everywhere(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    """``POST /signout-everywhere``: "Lost a device?" ends every session of the user, this one
    included, so a stolen device's remembered sign-in stops working."""
    if ctx.method != "POST":
        return Redirect(web.url("manage"))
    ctx.check_csrf()
    blocked = _guard(web, ctx)
    if blocked is not None:
        return blocked
    _, user = ctx.require_session()
    count = web.reg.store.delete_user_sessions(user.id)
    web.reg.info.audit("session.revoked_all", user.id, "success", ip=ctx.ip, count=count)
    ctx.session = None
    ctx.cookies.append(web.reg.sessions.clear_cookie_header())
    return Page("signed_out_everywhere", {"count": count})
