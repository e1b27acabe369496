"""Everything a view needs about one request, gathered once by the web app.

The accessors read the WSGI environ directly (the query string and a form body with the standard
library's ``parse_qsl``, cookies with werkzeug's ``parse_cookie``), each parsed once per request;
a full ``werkzeug.Request`` is built only if a view asks for it (``ctx.request``). The pages are
small forms, and an MFA verify request spent about a fifth of its time in werkzeug's request and
form objects (benchmarks/mfa_verify.py).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.wrappers import Request

from ..directory import DirectoryUser
from ..exceptions import AccessDenied
from ..json_text import encodable
from .session import Session, request_cookies

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["MAX_BODY", "RequestContext", "first_values", "parse_pairs"]

#: largest request body the pages accept: codes and names are small; a 1 MB body is refused early
MAX_BODY = 64 * 1024
_FORM = "application/x-www-form-urlencoded"


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """``parse_qsl(text, keep_blank_values=True)``: a query string's or a form body's pairs.
    Without ``%`` or ``+`` nothing is encoded, and splitting gives the same pairs without
    ``parse_qsl``'s unquoting of each part (a verify's query and form, a page's ``?c=``)."""
    if "%" in text or "+" in text:
        return parse_qsl(text, keep_blank_values=True)
    pairs = []
    for part in text.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


def first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The first value of each name, as werkzeug's ``MultiDict.to_dict()`` gives."""
    values: dict[str, str] = {}
    for name, value in pairs:
        values.setdefault(name, value)
    return values


@dataclass(kw_only=True)
class RequestContext:
    environ: WSGIEnvironment
    session: Session | None
    user: DirectoryUser | None
    lang: str
    ip: str | None
    now: float
    json: bool
    #: the continuation id this page works for (None in manage mode)
    cid: str | None = None
    #: the variable parts of the matched path (``/methods/<method_id>/delete``)
    path_args: Mapping[str, Any] = field(default_factory=dict)
    #: extra Set-Cookie headers for the response
    cookies: list[str] = field(default_factory=list)
    #: the session must be saved (and its cookie set) before responding
    session_dirty: bool = False
    _body: dict[str, Any] | None = None

    @cached_property
    def request(self) -> Request:
        """The full werkzeug request, for the few views that need more than the accessors."""
        request = Request(self.environ)
        request.max_content_length = MAX_BODY
        request.max_form_memory_size = MAX_BODY
        return request

    @property
    def method(self) -> str:
        return str(self.environ.get("REQUEST_METHOD", "GET")).upper()

    @cached_property
    def mimetype(self) -> str:
        return str(self.environ.get("CONTENT_TYPE", "")).split(";", 1)[0].strip().lower()

    @cached_property
    def args(self) -> dict[str, str]:
        """The query string's parameters (the first value of each)."""
        return first_values(parse_pairs(self.environ.get("QUERY_STRING", "")))

    def header(self, name: str) -> str | None:
        """A request header by its HTTP name (``Sec-Fetch-Site``)."""
        value = self.environ.get("HTTP_" + name.upper().replace("-", "_"))
        return None if value is None else str(value)

    def cookie(self, name: str) -> str | None:
        return request_cookies(self.environ).get(name)

    def fields(self) -> dict[str, Any]:
        """The submitted fields, from a form body or a JSON body (the JSON twin posts either)."""
        if self._body is None:
            self._body = self._read_fields()
        return self._body

    @staticmethod
    def _json_object(data: Any) -> dict[str, Any]:
        """A JSON body's fields: an object of text (``json_text.encodable``), else none."""
        return data if isinstance(data, dict) and encodable(data) else {}

    def _read_fields(self) -> dict[str, Any]:
        if self.method not in ("POST", "PUT", "PATCH", "DELETE"):
            return {}
        raw_length = self.environ.get("CONTENT_LENGTH")
        if not raw_length or self.mimetype not in ("application/json", _FORM):
            # Chunked bodies and other encodings: werkzeug's parser, with the same limits.
            if self.mimetype == "application/json":
                try:
                    data = self.request.get_json(silent=True)
                except RecursionError:  # nested past the parser's depth: silent=True misses it
                    return {}
                return self._json_object(data)
            return self.request.form.to_dict()
        try:
            length = int(raw_length)
        except ValueError:
            raise BadRequest("malformed Content-Length") from None
        if length > MAX_BODY:
            raise RequestEntityTooLarge()
        body = self.environ["wsgi.input"].read(length) if length > 0 else b""
        text = body.decode("utf-8", "replace")
        if self.mimetype == "application/json":
            try:
                data = json.loads(text)
            except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
                return {}
            return self._json_object(data)
        return first_values(parse_pairs(text))

    def form(self, key: str, default: str = "") -> str:
        value = self.fields().get(key, default)
        return value if isinstance(value, str) else default

    def arg(self, key: str) -> str | None:
        value = self.args.get(key)
        return value[:200] if value is not None else None

    def require_session(self) -> tuple[Session, DirectoryUser]:
        if self.session is None or self.user is None:
            raise AccessDenied("no signed-in session")
        return self.session, self.user

    def check_csrf(self) -> None:
        """Every state-changing request: a same-site request carrying the session's token."""
        if (self.header("Sec-Fetch-Site") or "").lower() == "cross-site":
            raise AccessDenied("csrf: cross-site request")
        if self.session is None:
            raise AccessDenied("csrf: no session")
        sent = self.header("X-CSRF-Token") or self.form("csrf_token")
        expected = self.session.csrf_token
        if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise AccessDenied("csrf: missing or wrong token")

    def touch(self) -> None:
        self.session_dirty = True
