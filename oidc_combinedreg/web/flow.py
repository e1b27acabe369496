"""The sign-in state kept in the middleware's session, and the step decision over it.

Session keys (all server side):
``uid`` user id, ``pwd_at`` password time, ``mfa_at`` MFA time, ``amr`` RFC 8176 values so far,
``conts`` continuations {id: {url, client_id, acr, essential, max_age, at}} (the request's decision
parameters, policy/acr.py), ``reg_done`` registration handled in this
sign-in, ``wizard`` the wizard's progress, ``pending`` pending method setups, ``campaign`` the
registration campaign's page in this sign-in (web/views/campaign.py).
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote_plus

from ..config.model import Config
from ..directory import DirectoryUser
from ..methods.kinds import METHOD_RULES, MethodKind
from ..policy.acr import AcrLevel, AcrRequest, acr_demand, parse_acr_request
from ..policy.campaign import campaign_kind
from ..policy.signin import SignInFacts, Step, next_step
from ..service import SecurityInfo
from ..service.base import signing_in_to
from ..signin import SignInResult
from ..store.base import MethodRecord
from .session import Session

if TYPE_CHECKING:
    from .app import WebApp
    from .context import RequestContext

__all__ = ["MAX_CONTINUATIONS", "Flow", "auth_time", "names_the_client", "request_params"]

_R = TypeVar("_R")

#: continuations kept per session (several tabs may each be in an /authorize request)
MAX_CONTINUATIONS = 5


def request_params(query: str) -> dict[str, str]:
    """An authorization request's parameters, the first value of each (OAuth 2.0 parameters
    may not repeat: RFC 6749 3.1; the host refuses a request that repeats one).

    ``parse_qsl(query)``'s pairs (blank values left out), read here without its per-pair calls:
    it is the guard's first step at every /authorize. A field splits at its first ``=``; one
    without ``=`` or with nothing after it is left out; a part is decoded only if it holds what
    decoding changes (``+``, ``%``), as ``unquote_plus`` would (tests/web/test_web_request_params.py
    compares the two on generated queries)."""
    params: dict[str, str] = {}
    for field in query.split("&"):
        name, _, value = field.partition("=")
        if not value:
            continue
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if name not in params:
            params[name] = unquote_plus(value) if "%" in value or "+" in value else value
    return params


def _max_age(params: Mapping[str, str]) -> int | None:
    """OIDC Core 3.1.2.1 ``max_age``; not a whole number: None (the host refuses it itself)."""
    raw = params.get("max_age", "").strip()
    return int(raw) if raw.isdigit() and len(raw) <= 10 else None


def auth_time(data: Mapping[str, Any]) -> int | None:
    """When the user last actively authenticated: the later of the password and the last MFA
    (docs/oidc.md, "auth_time"). The ID token's ``auth_time``; ``max_age`` counts from it."""
    pwd_at, mfa_at = data.get("pwd_at"), data.get("mfa_at")
    if not isinstance(pwd_at, int):
        return None
    return max(pwd_at, mfa_at) if isinstance(mfa_at, int) else pwd_at


def names_the_client(
    view: Callable[[WebApp, RequestContext], _R],
) -> Callable[[WebApp, RequestContext], _R]:
    """A sign-in step's view whose audit events name the client of its continuation (``?c=``):
    the application the user is signing in to, for "Recent activity" (decision 187). Read from
    the session already loaded: no store call."""

    @functools.wraps(view)
    def wrapper(web: WebApp, ctx: RequestContext) -> _R:
        with signing_in_to(Flow.client_of(ctx.session, ctx.cid) if ctx.cid else None):
            return view(web, ctx)

    return wrapper


class Flow:
    def __init__(self, config: Config, info: SecurityInfo) -> None:
        self.config = config
        self.info = info
        acr = config.acr
        #: this deployment's acr values and the level each stands for
        self.acr_levels = {
            acr.password: AcrLevel.PASSWORD,
            acr.mfa: AcrLevel.MFA,
            acr.phishing_resistant: AcrLevel.PHISHING_RESISTANT,
        }
        self._acr_by_level = {level: value for value, level in self.acr_levels.items()}

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

    @staticmethod
    def level(session: Session) -> AcrLevel:
        """The level this sign-in reached."""
        if "mfa" not in (session.data.get("amr") or []):
            return AcrLevel.PASSWORD
        return AcrLevel.PHISHING_RESISTANT if session.data.get("phr") else AcrLevel.MFA

    def result(
        self, session: Session, cont: Mapping[str, Any] | None = None
    ) -> SignInResult | None:
        """The cleared sign-in for the request ``cont``. Its ``acr``: the strongest class reached
        among those the request named (a stronger class satisfies a weaker one), else the
        strongest reached (docs/oidc.md)."""
        uid = session.user_id
        when = auth_time(session.data)
        if uid is None or when is None:
            return None
        amr = tuple(a for a in session.data.get("amr", ["pwd"]) if isinstance(a, str))
        reached = self.level(session)
        named = [self.acr_levels[v] for v in (cont or {}).get("acr", []) if v in self.acr_levels]
        within = [level for level in named if level <= reached]
        mfa_at = session.data.get("mfa_at")
        pwd_at = session.data.get("pwd_at")
        return SignInResult(
            user_id=uid,
            amr=amr,
            acr=self._acr_by_level[max(within) if within else reached],
            auth_time=when,
            password_time=pwd_at if isinstance(pwd_at, int) else when,
            mfa_time=mfa_at if isinstance(mfa_at, int) else None,
        )

    # -- continuations (server side: no redirect target ever comes from the request) ----------

    def add_continuation(
        self,
        session: Session,
        path: str,
        query: str,
        now: float,
        params: Mapping[str, str] | None = None,
    ) -> str:
        """Keep the request ``path?query`` to come back to; ``params``: what it means (the
        host's effective parameters; default: the query's own)."""
        conts: dict[str, Any] = session.data.setdefault("conts", {})
        while len(conts) >= MAX_CONTINUATIONS:
            oldest = min(conts, key=lambda k: conts[k].get("at", 0))
            del conts[oldest]
        if params is None:
            params = request_params(query)
        wanted = parse_acr_request(params)
        cid = secrets.token_urlsafe(12)
        conts[cid] = {
            "url": path + ("?" + query if query else ""),
            "client_id": params.get("client_id", "")[:200],
            # bounded: a request names a handful of classes, not thousands
            "acr": [v[:200] for v in wanted.values[:10]],
            "essential": wanted.essential,
            "max_age": _max_age(params),
            "at": int(now),
        }
        return cid

    @staticmethod
    def continuation(session: Session, cid: str | None) -> dict[str, Any] | None:
        conts = session.data.get("conts") or {}
        value = conts.get(cid) if cid else None
        return value if isinstance(value, dict) else None

    @staticmethod
    def client_of(session: Session | None, cid: str | None = None) -> str | None:
        """The client of continuation ``cid``, or without one of the newest kept (else the one
        the cookie check sent the browser back to): the application this browser is signing in
        to (for the audit events), or None."""
        if session is None:
            return None
        found = session.data.get("conts")
        conts: dict[str, Any] = found if isinstance(found, dict) else {}
        cont: Any
        if cid is None:
            kept = [c for c in conts.values() if isinstance(c, dict)]
            cont = max(kept, key=lambda c: c.get("at", 0), default=session.data)
        else:
            cont = conts.get(cid)
        client = cont.get("client_id") if isinstance(cont, dict) else None
        return client if isinstance(client, str) and client else None

    @staticmethod
    def in_progress(session: Session, cid: str) -> bool:
        """Does a page of the sign-in ``cid`` keep its progress under it (the wizard's, the
        registration campaign's)? Its continuation then stays while that page goes on."""
        for key in ("wizard", "campaign"):
            kept = session.data.get(key)
            if isinstance(kept, dict) and kept.get("cid") == cid:
                return True
        return False

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
        cont = cont or {}
        reached = self.level(session)
        reachable = max(reached, _method_level(methods))
        policies = self.config.policies
        demand = acr_demand(
            AcrRequest(
                values=tuple(str(v) for v in cont.get("acr") or ()),
                essential=bool(cont.get("essential")),
            ),
            self.acr_levels,
            reachable=reachable,
            may_register=policies.mfa_registration.audience.contains(user.id, user.groups),
        )
        max_age = cont.get("max_age")
        when = auth_time(session.data)
        return SignInFacts(
            user_id=user.id,
            groups=user.groups,
            per_user_mfa=user.per_user_mfa,
            methods=methods,
            state=self.info.state(user.id),
            now=now,
            mfa_done=session.data.get("mfa_at") is not None,
            phr_done=reached is AcrLevel.PHISHING_RESISTANT,
            ca_blocked=ca_blocked,
            ca_requires_mfa=ca_requires_mfa,
            acr=demand,
            # max_age=0 is prompt=login's twin: the host asks for the password (docs/oidc.md)
            reauthenticate=bool(
                isinstance(max_age, int)
                and max_age > 0
                and when is not None
                and now - when > max_age
            ),  # fmt: skip
            registration_handled=bool(session.data.get("reg_done")),
            campaign_kind=self.campaign_kind(user),
            campaign_handled=bool((session.data.get("campaign") or {}).get("done")),
        )

    def campaign_kind(self, user: DirectoryUser) -> MethodKind | None:
        """What the registration campaign asks ``user`` to add in this deployment: push only
        where push is offered (``[methods.push]``), else TOTP; each only if the methods policy
        allows it to the user and this deployment can register it."""
        policies = self.config.policies
        if not policies.campaign.enabled:
            return None
        offered = {
            k
            for k in self.info.available_kinds() & {MethodKind.PUSH, MethodKind.TOTP}
            if policies.method_allowed(k, user.id, user.groups)
            and (k is not MethodKind.PUSH or self.config.push.offered)
        }
        return campaign_kind(policies.campaign, offered)

    def next_step(self, facts: SignInFacts) -> Step:
        return next_step(facts, self.config.policies)


def _method_level(methods: Sequence[MethodRecord]) -> AcrLevel:
    """The highest level the user's registered methods can reach."""
    rules = [METHOD_RULES[m.kind] for m in methods]
    if any(r.mfa and r.phishing_resistant for r in rules):
        return AcrLevel.PHISHING_RESISTANT
    return AcrLevel.MFA if any(r.mfa for r in rules) else AcrLevel.PASSWORD
