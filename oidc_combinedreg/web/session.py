"""The middleware's own session: server side in the store, one opaque random id in a cookie.

Server-side so that "sign out everywhere", admin revocation and password reset can end sessions,
and so no state a user could tamper with (continuations, pending secrets) ever leaves the server.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from werkzeug.sansio.http import parse_cookie

from ..clock import Clock
from ..config.model import WebConfig
from ..store.base import LimitCheckedAdvance, Store

__all__ = ["Session", "SessionManager", "request_cookies"]

_COOKIES = "oidc_combinedreg.cookies"
#: session data key: when the /authorize guard last saved the session (whole seconds)
_SEEN = "seen"
#: at most how many seconds a cleared /authorize that changed nothing goes without saving
#: (decision 205); at most 1/200 of the session's lifetime
_SEEN_SLACK = 30.0


def request_cookies(environ: dict[str, Any]) -> Mapping[str, str]:
    """The request's cookies (the first of each name), parsed once per request: the session,
    the language and the reset flow all read them. A garbled header yields what parses."""
    header = str(environ.get("HTTP_COOKIE", ""))
    cached = environ.get(_COOKIES)
    if isinstance(cached, tuple) and cached[0] == header:
        return cached[1]  # type: ignore[no-any-return]
    cookies = _parse_cookies(header)
    environ[_COOKIES] = (header, cookies)
    return cookies


#: a Cookie header as browsers send it (RFC 6265 5.4): ``name=value`` pairs joined by "; ",
#: nothing quoted, no stray spaces
_PLAIN_COOKIES = re.compile(r'[^ \t=";]+=[^ \t";]*(?:; [^ \t=";]+=[^ \t";]*)*')


def _parse_cookies(header: str) -> dict[str, str]:
    """What werkzeug's ``parse_cookie(header).to_dict()`` gives (the first value of each name),
    a byte that is not UTF-8 replaced;
    a plain ASCII header (werkzeug reads the WSGI string as UTF-8 first, which changes nothing
    in ASCII) is split directly, in a third of the time of werkzeug's pair-by-pair matching."""
    if not (header.isascii() and _PLAIN_COOKIES.fullmatch(header)):
        # The header's bytes (latin-1 in WSGI) as UTF-8, what cannot be decoded replaced:
        # werkzeug.http.parse_cookie decodes strictly and raised on a stray byte (a 500 for
        # any stranger's request), while the host's Flask pages read such a header.
        text = header.encode("latin-1", "replace").decode("utf-8", "replace")
        return parse_cookie(text).to_dict()
    cookies: dict[str, str] = {}
    for pair in header.split("; "):
        name, _, value = pair.partition("=")
        cookies.setdefault(name, value)
    return cookies


def _new_sid(key: str) -> str:
    """An id for the session ``key``: 256 random bits make it unguessable on their own."""
    return f"{key}.{secrets.token_urlsafe(32)}"


class Session:
    """A loaded session. ``data`` is a plain JSON-safe dict; call ``SessionManager.save`` after changes."""

    def __init__(self, sid: str, data: dict[str, Any], *, is_new: bool = False) -> None:
        self.sid = sid
        self.data = data
        #: the id the browser still holds, to delete once a rotated session is saved
        self.replaced_sid: str | None = None
        #: changed in a way that must be saved even if no view marked it
        self.modified = is_new
        #: in the store (loaded, or saved since): a save only updates it while it is live
        self.stored = not is_new

    @property
    def user_id(self) -> str | None:
        value = self.data.get("uid")
        return value if isinstance(value, str) else None

    @property
    def csrf_token(self) -> str:
        token = self.data.get("csrf")
        if not isinstance(token, str):
            token = secrets.token_urlsafe(32)
            self.data["csrf"] = token
            self.modified = True
        return token


class SessionManager:
    def __init__(self, store: Store, config: WebConfig, clock: Clock) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.cookie_name = config.cookie_name
        self._seen_slack = min(_SEEN_SLACK, config.session_ttl / 200)
        #: the store, if it can write a session save planned ahead with a code check's success
        #: (:meth:`plan`); asked once (a protocol ``isinstance`` costs ~25 µs)
        self._planner = (
            store if isinstance(store, LimitCheckedAdvance) and store.checks_limits() else None
        )

    @property
    def plans(self) -> bool:
        """Whether :meth:`plan` can save a round trip on this store (else it does nothing)."""
        return self._planner is not None

    def plan(self, session: Session) -> None:
        """Inside ``store.transaction()``, before a code check: the save of ``session`` the block
        will make if the code is accepted, handed to a store that writes it in the same call as
        the check's success (Redis on one server, PostgreSQL: one round trip fewer). The block's
        :meth:`save` of a session with the same id and data then writes nothing more; a save of
        other data writes as usual. Other stores ignore it (SQLite: the block is one commit
        already)."""
        if self._planner is not None and session.user_id is not None:
            self._planner.plan_session_save(
                session.sid,
                session.data,
                user_id=session.user_id,
                ttl=self.config.session_ttl,
                replaces=session.replaced_sid,
                create=not session.stored,
            )

    def sid_from_environ(self, environ: dict[str, Any]) -> str | None:
        header = environ.get("HTTP_COOKIE")
        if not header or self.cookie_name not in header:
            return None
        value = request_cookies(environ).get(self.cookie_name)
        if value is None or not 20 <= len(value) <= 100:
            return None
        return value

    def load(self, environ: dict[str, Any]) -> Session | None:
        sid = self.sid_from_environ(environ)
        if sid is None:
            return None
        data = self.store.load_session(sid)
        return None if data is None else Session(sid, data)

    def create(self, data: dict[str, Any]) -> Session:
        return Session(_new_sid(secrets.token_urlsafe(16)), data, is_new=True)

    def rotate(self, session: Session) -> Session:
        """Same data under a new id (after password, MFA, step-up: no session fixation).

        The id is ``<key>.<secret>``: the key stays, the secret is new, so the old id no longer
        opens the session (what rotation is for) while a store can keep the session's row where
        it is (SQLite updates it in place instead of moving it in its key index)."""
        key = (session.replaced_sid or session.sid).rpartition(".")[0]
        fresh = Session(_new_sid(key or secrets.token_urlsafe(16)), session.data, is_new=True)
        fresh.replaced_sid = session.replaced_sid or session.sid
        fresh.stored = session.stored
        return fresh

    def save(self, session: Session) -> bool:
        """Store the session; a rotated one deletes the id it replaces in the same call.

        False when a session that was in the store has ended meanwhile (signed out everywhere,
        revoked at a password reset, expired): it stays ended, and nothing is written. A request
        that was running when the sessions were ended cannot bring its own back."""
        saved = self.store.save_session(
            session.sid,
            session.data,
            user_id=session.user_id,
            ttl=self.config.session_ttl,
            replaces=session.replaced_sid,
            create=not session.stored,
        )
        if saved:
            session.replaced_sid = None
            session.modified = False
            session.stored = True
        return saved

    def save_seen(self, session: Session, *, changed: bool) -> bool:
        """The /authorize guard's save. A session the request did not change (a cleared
        request adds its continuation and takes it back) is not written again within
        ``_SEEN_SLACK`` seconds of the guard's last save: the store holds this data, and its
        lifetime (``session_ttl`` from the last use) was refreshed then, so it lags by at most
        that much (decision 205). Otherwise as :meth:`save`, noting the time in the data."""
        now = self.clock.now()
        seen = session.data.get(_SEEN)
        if not changed and isinstance(seen, int) and 0 <= now - seen < self._seen_slack:
            return True
        session.data[_SEEN] = int(now)
        return self.save(session)

    def delete(self, session: Session) -> None:
        self.store.delete_session(session.sid)

    def set_cookie_header(self, session: Session) -> str:
        parts = [f"{self.cookie_name}={session.sid}", "Path=/", "HttpOnly", "SameSite=Lax"]
        if self.config.secure_cookies:
            parts.append("Secure")
        return "; ".join(parts)

    def clear_cookie_header(self) -> str:
        parts = [
            f"{self.cookie_name}=",
            "Path=/",
            "HttpOnly",
            "SameSite=Lax",
            "Max-Age=0",
            "Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        ]
        if self.config.secure_cookies:
            parts.append("Secure")
        return "; ".join(parts)
