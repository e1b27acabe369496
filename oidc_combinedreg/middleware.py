"""The WSGI entry: ``CombinedRegistration(app, config=..., directory=...)``.

Three kinds of request:

* paths under ``web.prefix`` are the middleware's own pages (wizard, MFA, manage mode);
* ``web.authorize_path`` is guarded: a sign-in with MFA or registration pending never reaches the
  host's authorization endpoint; the /authorize URL is kept server side and the browser comes back
  to it when the steps are done (a POSTed request, by its GET equivalent:
  web/authorize_request.py). If the host issues a code anyway for a request the middleware did
  not clear, the middleware replaces that response (a host that forgets a check is still safe);
* everything else passes straight through to the host, untouched (status, headers, body, streaming
  and ``wsgi.file_wrapper`` responses), at the cost of one prefix check and one closure.

The host calls :meth:`password_verified` after its password check, :meth:`sign_in_result` in its
authorization endpoint (amr/acr/auth_time for the ID token) and :meth:`sign_out` at logout, and
gives an :class:`~.authorization.AuthorizationEndpoint` (``authorization=``) through which the
guard answers a relying party itself: ``prompt=none`` never shows a page (OIDC Core 3.1.2.1), a
cancelled sign-in and an unmet essential ``acr`` end at the RP with their error (docs/oidc.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .admin.service import AdminService
from .authorization import (
    AuthorizationEndpoint,
    require_endpoint,
)
from .clock import Clock, SystemClock
from .conditional_access import (
    REGISTER_SECURITY_INFO,
    ClientIp,
    Control,
    Engine,
    Outcome,
    SignInContext,
    Target,
)
from .conditional_access.client_ip import ClientIpResolver
from .config.model import Config
from .delivery.base import Delivery
from .directory import Directory, DirectoryUser, RequestScopedDirectory, require_directory
from .policy.signin import SignInFacts, Step
from .service import SecurityInfo
from .service.reset import ResetService
from .signin import SignInResult, SignInState
from .store.base import Store
from .web import authorize_guard
from .web.after_password import HELD_AUDITS_KEY, SIGNED_IN_KEY, redirect_to_step
from .web.app import WebApp
from .web.authorize_guard import _COOKIES_KEY, RESULT_KEY
from .web.flow import Flow
from .web.render import Page, Redirect
from .web.session import Session, SessionManager
from .web.views.pwa import AppOrigin
from .wiring import (
    SEEN_KEY,
    ca_evaluated,
    check_cookie_transport,
    check_served,
    explain_no_result,
    step_decided,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from .conditional_access import Decision
    from .web.context import RequestContext

__all__ = ["CombinedRegistration", "RESULT_KEY"]

log = logging.getLogger("oidc_combinedreg")


class CombinedRegistration:
    """WSGI middleware adding combined security-info registration and MFA to a host IdP."""

    def __init__(
        self,
        app: WSGIApplication,
        *,
        config: Config,
        directory: Directory,
        store: Store | None = None,
        clock: Clock | None = None,
        delivery: Delivery | None = None,
        on_password_reset: Callable[[str], None] | None = None,
        authorization: AuthorizationEndpoint | None = None,
    ) -> None:
        # First: a host without it must not start (it would show pages under prompt=none).
        self.authorization = require_endpoint(authorization)
        # Now, not at the first password reset: a Directory without its methods. Asked at most
        # once per user in a request of the middleware's pages (web/app.py opens the scope).
        self.directory = RequestScopedDirectory(require_directory(directory))
        self.app = app
        self.config = config
        self.clock: Clock = clock or SystemClock()
        if store is None:
            from .store.factory import open_store

            store = open_store(config.storage, clock=self.clock)
        self.store: Store = store
        self.sessions = SessionManager(store, config.web, self.clock)
        # ``delivery``: the host's own email/text/voice providers (default: those the config names)
        self.info = SecurityInfo(
            config=config,
            store=store,
            clock=self.clock,
            directory=self.directory,
            delivery=delivery,
        )
        self.flow = Flow(config, self.info)
        # on_password_reset(user_id): the host ends its own sessions (docs/password-reset.md)
        self.password_reset = ResetService(self.info, on_password_reset=on_password_reset)
        self.admin = AdminService(info=self.info, directory=self.directory, config=config.admin)
        self.ca = Engine(config.conditional_access)
        # Its own, not resolve_client_ip's: that one finds the resolver for the [network] it is
        # given by hashing it, trusted proxies and all, at each of the two or three calls a
        # request makes (the pages' context, Conditional Access, the host's counters).
        self._client_ips = ClientIpResolver(config.conditional_access.network)
        self.web = WebApp(self)
        self._prefix = config.web.prefix
        self._prefix_slash = config.web.prefix + "/"
        self._authorize = config.web.authorize_path
        origin = config.push.web_app_origin  # the web app's own origin: nothing else there
        self._app_origin = AppOrigin(origin, config.web.prefix) if origin else None

    # -- WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        # The one mark a pass-through request gets: the host contract checks it (wiring.py).
        environ[SEEN_KEY] = self
        if self._app_origin is not None and self._app_origin.matches(environ):
            return self._app_origin.serve(self.web, environ, start_response)
        if path.startswith(self._prefix_slash) or path == self._prefix:
            return self.web(environ, start_response)
        if path == self._authorize:
            return authorize_guard.guard(self, environ, start_response)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            cookies = environ.get(_COOKIES_KEY)
            if cookies:
                if SIGNED_IN_KEY in environ:  # a sign-in started: its next page at once?
                    headers = redirect_to_step(self, environ, status, headers)
                headers = [*headers, *self.web.cookie_headers(environ, cookies)]
            return start_response(status, headers, exc_info)

        return self.app(environ, start)

    # -- the host contract --------------------------------------------------------------------

    def password_verified(self, environ: WSGIEnvironment, user_id: str) -> None:
        """Call right after the host checked the user's password, in the same request.

        Starts a new sign-in for ``user_id`` (anything pending from an earlier sign-in in this
        browser is dropped) under a new session id, set as a cookie on the host's response.
        """
        if check_served(self, environ, "password_verified()"):
            check_cookie_transport(self, environ)
        old = self.sessions.load(environ)
        session = self.sessions.create(Flow.start(user_id, self.clock.now()))
        if old is not None:
            session.replaced_sid = old.sid
        # The app this browser is signing in to: the /authorize request the old session keeps
        # (the cookie check's), in the event written anyway (decision 187). The session and its
        # event are one write (SQLite: one commit instead of one per statement).
        client = Flow.client_of(old)
        detail = {"client_id": client} if client else {}
        with self.store.transaction():
            self.sessions.save(session)
            self.info.audit(
                "signin.password", user_id, "success", ip=self.client_ip(environ), **detail
            )
        environ.setdefault(_COOKIES_KEY, []).append(self.sessions.set_cookie_header(session))
        # The host's redirect back to /authorize may go to the sign-in's next page (decision 226).
        environ[SIGNED_IN_KEY] = session

    def verify_temporary_access_pass(
        self, environ: WSGIEnvironment, user_id: str, code: str
    ) -> bool:
        """Call from the login form's "Temporary Access Pass" option, instead of the password check.

        True: the pass is valid, and a new sign-in started exactly as :meth:`password_verified`
        does, with amr ``["otp", "mfa"]``: MFA counts as done for this sign-in, the wizard may
        register methods even when the user has none, and Conditional Access sees MFA satisfied.
        False: unknown or disabled user, wrong, expired, used or revoked pass, or throttled (each
        audited as ``tap.failed`` with the reason; a throttled try only once per address and 15
        minutes, decision 188). Details: docs/admin.md.
        """
        from .admin.tap import TAP_AMR

        check_served(self, environ, "verify_temporary_access_pass()")
        user = self.directory.get_user(user_id)
        tap_id = self.admin.tap.sign_in(user, user_id, code, ip=self.client_ip(environ))
        if tap_id is None:
            return False
        now = self.clock.now()
        data = Flow.start(user_id, now)
        data.update(amr=list(TAP_AMR), mfa_at=int(now), tap=tap_id)
        old = self.sessions.load(environ)
        session = self.sessions.create(data)
        if old is not None:
            session.replaced_sid = old.sid
        self.sessions.save(session)
        environ.setdefault(_COOKIES_KEY, []).append(self.sessions.set_cookie_header(session))
        environ[SIGNED_IN_KEY] = session
        return True

    def sign_in_result(self, environ: WSGIEnvironment) -> SignInResult | None:
        """In the authorization endpoint: the cleared sign-in, or None (treat as not signed in)."""
        value = environ.get(RESULT_KEY)
        if isinstance(value, SignInResult):
            return value
        explain_no_result(self, environ)
        return None

    def current_sign_in(self, environ: WSGIEnvironment) -> SignInState | None:
        """For the host's own pages: who is signed in to the middleware in this browser, with
        which ``amr`` and when (e.g. a recent MFA before an admin page), or None.

        Read-only: only the session of this request's own cookie, nothing saved or moved on. A
        disabled or deleted user is None, like no sign-in."""
        session = self.sessions.load(environ)
        if session is None or session.user_id is None:
            return None
        user = self.directory.get_user(session.user_id)
        result = self.flow.result(session) if user is not None and user.enabled else None
        if result is None:
            return None
        return SignInState(
            user_id=result.user_id,
            amr=result.amr,
            acr=result.acr,
            auth_time=result.auth_time,
            password_time=result.password_time,
            mfa_time=result.mfa_time,
        )

    def sign_out(self, environ: WSGIEnvironment) -> None:
        """Call at logout: ends the middleware's session for this browser."""
        try:
            session = self.sessions.load(environ)
            if session is not None:
                self.sessions.delete(session)
        finally:
            environ.setdefault(_COOKIES_KEY, []).append(self.sessions.clear_cookie_header())

    def check_app_password(
        self,
        user_id: str,
        password: str,
        *,
        ip: str | None,
        client_id: str = "legacy-client",
    ) -> bool:
        """For non-browser protocols (IMAP, SMTP, EAS...): is this one of the user's app passwords?

        ``ip`` is the client's address: Conditional Access places the client with it, so ``None``
        fails closed. False for a wrong password, a user without per-user MFA enforced,
        throttling or a Conditional Access block (``client_id`` names the legacy app for the
        policies); every attempt is audited, never the password. Never for browser sign-in.
        """
        return self.info.app_passwords.check(
            user_id, password, ip=ip, ca=self.ca, client_id=client_id
        )

    # -- client IP and Conditional Access -----------------------------------------------------

    def client_ip_info(self, environ: WSGIEnvironment) -> ClientIp:
        return self._client_ips.resolve(
            environ.get("REMOTE_ADDR"),
            x_forwarded_for=environ.get("HTTP_X_FORWARDED_FOR"),
            forwarded=environ.get("HTTP_FORWARDED"),
        )

    def client_ip(self, environ: WSGIEnvironment) -> str | None:
        info = self.client_ip_info(environ)
        if info.malformed:
            log.warning("unusable forwarded header from peer %s", environ.get("REMOTE_ADDR"))
        return str(info.ip) if info.ip is not None else None

    def evaluate_ca(
        self, environ: WSGIEnvironment, session: Session, user: DirectoryUser, target: Target
    ) -> Decision:
        info = self.client_ip_info(environ)
        amr = session.data.get("amr") or []
        satisfied = set()
        if "mfa" in amr:
            satisfied.add(Control.MFA)
            if session.data.get("phr"):
                satisfied.add(Control.PHISHING_RESISTANT_MFA)
        decision = self.ca.evaluate(
            SignInContext(
                user_id=user.id,
                groups=user.groups,
                target=target,
                client_ip=info.ip,
                client_ip_malformed=info.malformed,
                satisfied=frozenset(satisfied),
            )
        )
        ca_evaluated(environ, user.id, target, decision)  # DEBUG, with the correlation id
        if decision.report_only_results or decision.outcome is Outcome.BLOCK:
            event: dict[str, Any] = {
                "event": "ca.evaluated",
                "user_id": user.id,
                "outcome": "blocked" if decision.outcome is Outcome.BLOCK else "info",
                "ip": str(info.ip) if info.ip else None,
                "correlation_id": decision.correlation_id,
                "target": str(target),
                "reason": decision.reason,
                "blocking": list(decision.blocking_policies),
                "report_only": [r.name for r in decision.report_only_results],
            }
            held = environ.get(HELD_AUDITS_KEY)
            if held is None:
                self.info.audit(**event)
            else:  # written with the session the decision leads to, or left to the guard's
                held.append(event)
        return decision

    def decide(
        self,
        ctx: RequestContext,
        session: Session,
        user: DirectoryUser,
        cont: dict[str, Any] | None,
    ) -> Step:
        """The next step of this sign-in: Conditional Access for the app, MFA, registration."""
        step = self.flow.next_step(self.sign_in_facts(ctx, session, user, cont))
        step_decided(ctx.environ, user.id, cont, step)  # DEBUG, with the correlation id
        return step

    def sign_in_facts(
        self,
        ctx: RequestContext,
        session: Session,
        user: DirectoryUser,
        cont: dict[str, Any] | None,
    ) -> SignInFacts:
        """Everything the sign-in decision and the planner need, Conditional Access included."""
        client_id = str(cont.get("client_id") or "") if cont else ""
        decision = self.evaluate_ca(
            ctx.environ, session, user, Target.application(client_id or "-")
        )
        if decision.outcome is Outcome.BLOCK:
            session.data["ca_correlation"] = decision.correlation_id
        return self.flow.facts(
            session,
            user,
            cont,
            ctx.now,
            ca_blocked=decision.outcome is Outcome.BLOCK,
            ca_requires_mfa=any(
                Control.MFA in r.one_of or Control.PHISHING_RESISTANT_MFA in r.one_of
                for r in decision.requirements
            ),
        )

    def check_registration_action(
        self, ctx: RequestContext, user: DirectoryUser
    ) -> Page | Redirect | None:
        """Conditional Access for the user action "register security information".

        A block is a blocked page. A grant that requires MFA sends a user who has an MFA method
        to the MFA step first (then the decision is re-evaluated with MFA satisfied); a user who
        has none cannot meet it here and gets the blocked page (an admin issues a Temporary
        Access Pass, which counts as MFA).
        """
        assert ctx.session is not None
        decision = self.evaluate_ca(ctx.environ, ctx.session, user, REGISTER_SECURITY_INFO)
        if decision.outcome is Outcome.ALLOW:
            return None
        if decision.outcome is Outcome.REQUIRE_CONTROLS and self.info.mfa_methods(user.id):
            mfa_only = all(Control.MFA in r.one_of for r in decision.missing)
            if mfa_only:
                return Redirect(self.web.url("mfa", c=ctx.cid) if ctx.cid else self.web.url("mfa"))
        reason = (
            "registration_location"
            if decision.outcome is Outcome.BLOCK
            else "registration_requires_mfa"
        )
        return Page("blocked", {"reason": reason, "correlation_id": decision.correlation_id}, 403)
