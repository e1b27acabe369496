"""The sign-in state kept in the middleware's session, and the step decision over it.

Session keys (all server side):
``uid`` user id, ``pwd_at`` password time, ``mfa_at`` MFA time, ``amr`` RFC 8176 values so far,
``conts`` continuations {id: {url, client_id, acr_mfa}}, ``reg_done`` registration handled in this
sign-in, ``wizard`` the wizard's progress, ``pending`` pending method setups.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs

from ..config.model import Config
from ..directory import DirectoryUser
from ..policy.signin import SignInFacts, Step, next_step
from ..service import SecurityInfo
from ..signin import SignInResult
from .session import Session

__all__ = ["MAX_CONTINUATIONS", "Flow"]

#: continuations kept per session (several tabs may each be in an /authorize request)
MAX_CONTINUATIONS = 5


class Flow:
    def __init__(self, config: Config, info: SecurityInfo) -> None:
        self.config = config
        self.info = info

    # -- sign-in state ------------------------------------------------------------------------

    @staticmethod
    def start(user_id: str, now: float) -> dict[str, Any]:
        """Fresh session data for a password sign-in (replaces anything from an earlier sign-in)."""
        return {
            "uid": user_id,
            "pwd_at": int(now),
            "mfa_at": None,
            "amr": ["pwd"],
            "conts": {},
            "reg_done": False,
            "csrf": secrets.token_urlsafe(32),
        }

    @staticmethod
    def mark_mfa(
        session: Session, amr: list[str], now: float, *, phishing_resistant: bool = False
    ) -> None:
        """Record an MFA in this sign-in. Phishing resistance is a property of the method kind
        (WebAuthn), kept apart from ``amr``: a synced passkey reports ``swk`` and is still
        phishing-resistant, a push approval reports ``swk`` and is not."""
        if phishing_resistant:
            session.data["phr"] = True
        current = [a for a in session.data.get("amr", ["pwd"]) if isinstance(a, str)]
        for value in [*amr, "mfa"]:
            if value not in current:
                current.append(value)
        session.data["amr"] = current
        session.data["mfa_at"] = int(now)

    def result(self, session: Session) -> SignInResult | None:
        uid = session.user_id
        pwd_at = session.data.get("pwd_at")
        if uid is None or not isinstance(pwd_at, int):
            return None
        amr = tuple(a for a in session.data.get("amr", ["pwd"]) if isinstance(a, str))
        acr = self.config.acr
        if session.data.get("phr") and "mfa" in amr:
            acr_value = acr.phishing_resistant
        elif "mfa" in amr:
            acr_value = acr.mfa
        else:
            acr_value = acr.password
        mfa_at = session.data.get("mfa_at")
        return SignInResult(
            user_id=uid,
            amr=amr,
            acr=acr_value,
            auth_time=pwd_at,
            mfa_time=mfa_at if isinstance(mfa_at, int) else None,
        )

    # -- continuations (server side: no redirect target ever comes from the request) ----------

    def add_continuation(self, session: Session, path: str, query: str, now: float) -> str:
        conts: dict[str, Any] = session.data.setdefault("conts", {})
        while len(conts) >= MAX_CONTINUATIONS:
            oldest = min(conts, key=lambda k: conts[k].get("at", 0))
            del conts[oldest]
        params = parse_qs(query, keep_blank_values=False)
        acr_values = " ".join(params.get("acr_values", [])).split()
        acr = self.config.acr
        cid = secrets.token_urlsafe(12)
        conts[cid] = {
            "url": path + ("?" + query if query else ""),
            "client_id": (params.get("client_id") or [""])[0][:200],
            "acr_mfa": any(v in (acr.mfa, acr.phishing_resistant) for v in acr_values),
            "at": int(now),
        }
        return cid

    @staticmethod
    def continuation(session: Session, cid: str | None) -> dict[str, Any] | None:
        conts = session.data.get("conts") or {}
        value = conts.get(cid) if cid else None
        return value if isinstance(value, dict) else None

    @staticmethod
    def pop_continuation(session: Session, cid: str) -> str | None:
        conts = session.data.get("conts") or {}
        value = conts.pop(cid, None)
        return str(value["url"]) if isinstance(value, dict) else None

    # -- the decision -------------------------------------------------------------------------

    def facts(
        self,
        session: Session,
        user: DirectoryUser,
        cont: dict[str, Any] | None,
        now: float,
        *,
        ca_blocked: bool = False,
        ca_requires_mfa: bool = False,
    ) -> SignInFacts:
        methods = self.info.methods(user.id)
        return SignInFacts(
            user_id=user.id,
            groups=user.groups,
            per_user_mfa=user.per_user_mfa,
            methods=methods,
            state=self.info.state(user.id),
            now=now,
            mfa_done=session.data.get("mfa_at") is not None,
            ca_blocked=ca_blocked,
            ca_requires_mfa=ca_requires_mfa,
            acr_requires_mfa=bool(cont and cont.get("acr_mfa")),
            registration_handled=bool(session.data.get("reg_done")),
        )

    def next_step(self, facts: SignInFacts) -> Step:
        return next_step(facts, self.config.policies)
