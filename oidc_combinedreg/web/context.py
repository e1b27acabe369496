"""Everything a view needs about one request, gathered once by the web app."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request

from ..directory import DirectoryUser
from ..exceptions import AccessDenied
from .session import Session

__all__ = ["RequestContext"]


@dataclass(kw_only=True)
class RequestContext:
    request: Request
    session: Session | None
    user: DirectoryUser | None
    lang: str
    ip: str | None
    now: float
    json: bool
    #: the continuation id this page works for (None in manage mode)
    cid: str | None = None
    #: extra Set-Cookie headers for the response
    cookies: list[str] = field(default_factory=list)
    #: the session must be saved (and its cookie set) before responding
    session_dirty: bool = False
    _body: dict[str, Any] | None = None

    @property
    def method(self) -> str:
        return self.request.method

    def fields(self) -> dict[str, Any]:
        """The submitted fields, from a form body or a JSON body (the JSON twin posts either)."""
        if self._body is None:
            if self.request.mimetype == "application/json":
                data = self.request.get_json(silent=True)
                self._body = data if isinstance(data, dict) else {}
            else:
                self._body = self.request.form.to_dict()
        return self._body

    def form(self, key: str, default: str = "") -> str:
        value = self.fields().get(key, default)
        return value if isinstance(value, str) else default

    def arg(self, key: str) -> str | None:
        value = self.request.args.get(key)
        return value[:200] if value is not None else None

    def require_session(self) -> tuple[Session, DirectoryUser]:
        if self.session is None or self.user is None:
            raise AccessDenied("no signed-in session")
        return self.session, self.user

    def check_csrf(self) -> None:
        """Every state-changing request: a same-site request carrying the session's token."""
        if self.request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
            raise AccessDenied("csrf: cross-site request")
        if self.session is None:
            raise AccessDenied("csrf: no session")
        sent = self.request.headers.get("X-CSRF-Token") or self.form("csrf_token")
        expected = self.session.csrf_token
        if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise AccessDenied("csrf: missing or wrong token")

    def touch(self) -> None:
        self.session_dirty = True
