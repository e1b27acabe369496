"""The example IdP's session cookie (example_idp/sessions.py): Flask's signed cookie with its
signing serializer made once per key set, not twice per request (issue 22.5); a new key still
takes effect at once, and a key moved to SECRET_KEY_FALLBACKS still opens its cookies."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from idp_client import login, make_idp
from itsdangerous import URLSafeTimedSerializer


def _signed_in(client: FlaskClient) -> bool:
    return "Sign out" in client.get("/").get_data(as_text=True)


def test_the_signing_serializer_is_made_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_idp(tmp_path)
    login(client)
    made: list[object] = []
    init = URLSafeTimedSerializer.__init__

    def counting(self: URLSafeTimedSerializer, *args: object, **kwargs: object) -> None:
        made.append(self)
        init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(URLSafeTimedSerializer, "__init__", counting)
    for _ in range(5):
        assert _signed_in(client)
    # Flask made one for every open_session and every save_session.
    assert len(made) <= 1


def test_a_new_secret_key_takes_effect_at_once(tmp_path: Path) -> None:
    client = make_idp(tmp_path)
    login(client)
    assert _signed_in(client)
    app = client.application
    old = app.secret_key
    app.secret_key = "another key of at least thirty-two characters"
    assert not _signed_in(client)  # the cookie signed with the old key is not accepted
    app.config["SECRET_KEY_FALLBACKS"] = [old]
    assert _signed_in(client)  # a fallback key still opens it
