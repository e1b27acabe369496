"""The IdP's own session cookie: Flask's signed cookie, its signing serializer made once.

Flask builds an itsdangerous serializer for every ``open_session`` and every ``save_session``,
and itsdangerous tries each new one out by serializing an empty dict (``is_text_serializer``):
about a twentieth of a sign-in page's CPU here. The serializer keeps nothing per request, so
one per key set serves every request; a changed ``secret_key`` or ``SECRET_KEY_FALLBACKS``
makes a new one. The cookie, its signature and its checks are Flask's, unchanged.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

__all__ = ["KeptSerializerSessions"]


class KeptSerializerSessions(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self._kept: tuple[Any, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        kept = self._kept  # one read: another thread may replace it meanwhile
        if kept is None or kept[0] != keys:
            kept = self._kept = (keys, super().get_signing_serializer(app))
        return kept[1]
