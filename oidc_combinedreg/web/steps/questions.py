"""Security questions registration: choose and answer ``questions_to_register`` questions at once.

Registered as a set; there is no change (delete the set and register again). Never MFA: no ``amr``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...exceptions import InvalidInput
from ...methods.questions import QuestionAnswer
from ..render import Page

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext
    from ..render import Redirect

__all__ = ["handle"]


def _data(web: WebApp) -> dict[str, Any]:
    svc = web.reg.info.questions
    return {
        "stage": "answer",
        "count": svc.to_register,
        "predefined": list(svc.predefined()),
        "allow_custom": web.config.questions.allow_custom,
        "values": {},
        "errors": {},
    }


def handle(
    web: WebApp, ctx: RequestContext, step: dict[str, Any], action: str
) -> Page | Redirect | None:
    data = _data(web)
    if action != "next":
        return Page("questions", data)
    _, user = ctx.require_session()
    pairs = []
    for i in range(data["count"]):
        custom = ctx.form(f"custom{i}")[:200].strip()
        question = custom or ctx.form(f"question{i}")[:200]
        pairs.append(
            QuestionAnswer(
                question=question, answer=ctx.form(f"answer{i}")[:200], custom=bool(custom)
            )
        )
        # Keep the chosen questions, never the typed answers, when the page comes back.
        data["values"][f"question{i}"] = ctx.form(f"question{i}")[:200]
        data["values"][f"custom{i}"] = custom
    try:
        record = web.reg.info.questions.register(user.id, pairs, ip=ctx.ip)
    except InvalidInput as exc:
        data["errors"][exc.field] = exc.message
        return Page("questions", data, 400)
    step["method_id"] = record.id
    ctx.touch()
    return None
