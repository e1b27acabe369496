"""The IdP's own session cookie: Flask's signed cookie, its signing serializer made once.

Flask builds an itsdangerous serializer for every ``open_session`` and every ``save_session``,
and itsdangerous tries each new one out by serializing an empty dict (``is_text_serializer``):
about a twentieth of a sign-in page's CPU here. The serializer keeps nothing per request, so
one per key set serves every request; a changed ``secret_key`` or ``SECRET_KEY_FALLBACKS``
makes a new one. Its signer is made once too, and derives each key once: itsdangerous makes a
new signer for every ``loads`` and ``dumps`` and derives the HMAC key from the secret again at
every signature and every check (an HMAC of the salt: a pure function of the key and the salt,
so nothing to invalidate but the key set itself, which makes a new serializer). The cookie, its
signature and its checks are Flask's, unchanged.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask import json as flask_json
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask.wrappers import Response
from itsdangerous import Signer, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.url_safe import URLSafeSerializerMixin

__all__ = ["KeptSerializerSessions"]


class _KeptKeySigner(TimestampSigner):
    """itsdangerous's timestamp signer, each secret key derived once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._derived: dict[str | bytes | None, bytes] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        key = self._derived.get(secret_key)
        if key is None:  # two threads may both derive it: the same bytes either way
            key = self._derived[secret_key] = super().derive_key(secret_key)
        return key


class _KeptSignerSerializer(URLSafeTimedSerializer):
    """The serializer Flask makes, its signer (for its own salt, the only one Flask uses) made
    once instead of at every ``loads`` and ``dumps``."""

    default_signer = _KeptKeySigner
    _kept_signer: Signer | None = None

    def dump_payload(self, obj: Any) -> bytes:
        """The JSON in base64, not tried with zlib first (decision 202): itsdangerous compresses
        every payload to see whether it gets shorter, and a new deflate state costs about 60 us
        (more than the rest of the signature) to save a few bytes of a cookie this small, whose
        Flask-Login ``_id`` is a hash that does not compress. ``loads`` still opens a compressed
        cookie (one made before, or by Flask's own serializer)."""
        json = super(URLSafeSerializerMixin, self).dump_payload(obj)
        return base64_encode(json)

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        if salt is not None and salt != self.salt:
            return super().make_signer(salt)
        kept = self._kept_signer
        if kept is None:
            kept = self._kept_signer = super().make_signer(self.salt)
        return kept


#: the JSON values Flask's tagged serializer passes through as they are
_PLAIN = frozenset({str, int, float, bool, type(None)})


class _FlatSessionJSON(TaggedJSONSerializer):
    """Flask's session JSON, without its tag pass for a session that has nothing to tag.

    Flask's serializer tries each of its eight tags on the session and on every value in it
    when it writes the cookie, and walks what it reads back for tags to undo. The IdP's session
    is a flat dict of strings, numbers and booleans (Flask-Login's marks, a request's key):
    nothing to tag, so the walk changes nothing and costs a tenth of the cookie's handling. The
    JSON is the same (Flask's JSON provider, compact); anything else (a tuple, bytes, a nested
    dict, a key that looks like a tag) goes through Flask's serializer as before."""

    def _flat(self, value: Any) -> bool:
        return (
            type(value) is dict
            and all(type(item) in _PLAIN for item in value.values())
            and not (len(value) == 1 and next(iter(value)) in self.tags)
        )

    def dumps(self, value: Any) -> str:
        if self._flat(value):
            return flask_json.dumps(value, separators=(",", ":"))
        return super().dumps(value)

    def loads(self, value: str) -> Any:
        data = flask_json.loads(value)
        return data if self._flat(data) else self._untag_scan(data)


def _vary_cookie(response: Response) -> None:
    """``response.vary.add("Cookie")``, the usual cases without werkzeug's header set."""
    vary = response.headers.get("Vary")
    if not vary:
        response.headers["Vary"] = "Cookie"
    elif "cookie" not in (item.strip().lower() for item in vary.split(",")):
        response.vary.add("Cookie")  # werkzeug's own spelling of the longer header


class KeptSerializerSessions(SecureCookieSessionInterface):
    serializer = _FlatSessionJSON()

    def __init__(self) -> None:
        self._kept: tuple[Any, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        kept = self._kept  # one read: another thread may replace it meanwhile
        if kept is None or kept[0] != keys:
            kept = self._kept = (keys, self._serializer(app))
        return kept[1]

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Flask's (3.1), with ``Vary: Cookie`` added without werkzeug's header set: Flask asks
        ``response.vary`` up to twice per request, and each time werkzeug parses the header into
        a set and writes it back, for a header that is absent or says ``Cookie`` already."""
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        secure = self.get_cookie_secure(app)
        partitioned = self.get_cookie_partitioned(app)
        samesite = self.get_cookie_samesite(app)
        httponly = self.get_cookie_httponly(app)
        if session.accessed:  # the answer depends on the cookie
            _vary_cookie(response)
        if not session:  # emptied: the cookie goes; empty: none is set
            if session.modified:
                response.delete_cookie(
                    name, domain=domain, path=path, secure=secure, partitioned=partitioned,
                    samesite=samesite, httponly=httponly,
                )  # fmt: skip
                _vary_cookie(response)
            return
        if not self.should_set_cookie(app, session):
            return
        expires = self.get_expiration_time(app, session)
        value = self._kept_serializer(app).dumps(dict(session))
        response.set_cookie(
            name, value, expires=expires, httponly=httponly, domain=domain, path=path,
            secure=secure, partitioned=partitioned, samesite=samesite,
        )  # fmt: skip
        _vary_cookie(response)

    def _kept_serializer(self, app: Flask) -> URLSafeTimedSerializer:
        serializer = self.get_signing_serializer(app)
        if serializer is None:  # Flask refuses to open a session without a key: never here
            raise RuntimeError("The session needs the app's secret_key.")
        return serializer

    def _serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """Flask's ``get_signing_serializer`` (3.1), with the kept signer."""
        if not app.secret_key:
            return None
        keys: list[str | bytes] = [*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key]
        return _KeptSignerSerializer(
            keys,  # type: ignore[arg-type]  # signs with the last, checks the others too
            salt=self.salt,
            serializer=self.serializer,
            signer_kwargs={
                "key_derivation": self.key_derivation,
                "digest_method": self.digest_method,
            },
        )
