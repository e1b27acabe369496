"""A session save planned ahead of a code check (``LimitCheckedAdvance.plan_session_save``), for the
stores that write it in the same atomic call as the check's success (Redis on one server,
PostgreSQL): the MFA step's upgraded session then costs no round trip of its own.

The plan lives in the thread's open ``transaction()`` block. The block's first checked advance of
the plan's user that stores its step writes the session too; the block's ``save_session`` with
exactly the planned arguments then answers as that write did, without writing again. Any other
save goes to the backend as usual, so a plan that did not come true (the code refused, other
data) changes nothing that the block's calls would not have done themselves.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["SessionPlan", "SessionPlans"]


@dataclass(slots=True)
class SessionPlan:
    """The arguments of the planned ``save_session``; ``payload`` is the data as the store
    writes it (its own JSON), so a save is matched on exactly what would be written."""

    sid: str
    payload: str
    user_id: str
    ttl: float
    replaces: str | None
    create: bool
    #: None until an advance wrote it; then whether it saved (False: the session it updates had
    #: ended, and stays ended)
    saved: bool | None = None

    def same(
        self, sid: str, payload: str, user_id: str | None, ttl: float, replaces: str | None,
        create: bool,
    ) -> bool:  # fmt: skip
        return (sid, payload, user_id, ttl, replaces, create) == (
            self.sid, self.payload, self.user_id, self.ttl, self.replaces, self.create
        )  # fmt: skip


class SessionPlans:
    """Per thread: whether a ``transaction()`` block is open, and its plan."""

    def __init__(self) -> None:
        self._local = threading.local()

    def open(self) -> bool:
        """Enter a block; False if one is open already (a nested block joins it)."""
        if getattr(self._local, "open", False):
            return False
        self._local.open, self._local.plan = True, None
        return True

    def close(self) -> None:
        self._local.open, self._local.plan = False, None

    def plan(self, plan: SessionPlan) -> None:
        """Keep ``plan`` for the open block (outside one: ignored, nothing would consume it)."""
        if getattr(self._local, "open", False):
            self._local.plan = plan

    def pending(self, user_id: str) -> SessionPlan | None:
        """The block's plan for ``user_id`` that no advance has written yet."""
        plan: SessionPlan | None = getattr(self._local, "plan", None)
        if plan is None or plan.saved is not None or plan.user_id != user_id:
            return None
        return plan

    def settle(
        self, sid: str, payload: str, user_id: str | None, ttl: float, replaces: str | None,
        create: bool,
    ) -> tuple[bool | None, str | None, bool]:  # fmt: skip
        """For a ``save_session`` in the block: (its answer if the plan with exactly these
        arguments was written, else None; then the ``replaces`` and ``create`` the save must
        use). When a written plan differs from the save (other data), its session is live under
        ``sid`` and the id it replaced is gone: the save updates ``sid`` in place, while live.
        A plan written while its session had ended wrote none of it: the save goes as usual."""
        plan: SessionPlan | None = getattr(self._local, "plan", None)
        if plan is None or plan.saved is None or plan.sid != sid:
            return None, replaces, create
        self._local.plan = None
        if plan.same(sid, payload, user_id, ttl, replaces, create):
            return plan.saved, replaces, create
        if not plan.saved:
            return None, replaces, create  # nothing of it was written: the save is as planless
        return None, None, False
