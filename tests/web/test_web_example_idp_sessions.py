"""The example IdP's session cookie (example_idp/sessions.py): Flask's signed cookie with its
signing serializer made once per key set, not twice per request (issue 22.5); a new key still
takes effect at once, and a key moved to SECRET_KEY_FALLBACKS still opens its cookies."""

from __future__ import annotations

import datetime as dt
import uuid
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SecureCookieSessionInterface, session_json_serializer
from flask.testing import FlaskClient
from idp_client import authorize_params, login, make_idp, registered
from itsdangerous import Signer, URLSafeTimedSerializer
from markupsafe import Markup

from example_idp.sessions import KeptSerializerSessions


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


def test_the_signer_and_its_key_are_made_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """itsdangerous makes a signer for every ``loads``/``dumps`` and derives the key from the
    secret at every signature and check: twice or more per request of a signed-in browser."""
    client = make_idp(tmp_path)
    login(client)
    assert _signed_in(client)
    signers: list[object] = []
    derived: list[object] = []
    init, derive = Signer.__init__, Signer.derive_key

    def counting_init(self: Signer, *args: object, **kwargs: object) -> None:
        signers.append(self)
        init(self, *args, **kwargs)  # type: ignore[arg-type]

    def counting_derive(self: Signer, secret_key: str | bytes | None = None) -> bytes:
        derived.append(secret_key)
        return derive(self, secret_key)

    monkeypatch.setattr(Signer, "__init__", counting_init)
    monkeypatch.setattr(Signer, "derive_key", counting_derive)
    for _ in range(5):
        assert _signed_in(client)
    assert (len(signers), len(derived)) == (0, 0)


def test_the_session_cookie_is_signed_without_trying_zlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """itsdangerous compressed every payload to see whether it got shorter: a new deflate state,
    about 60 us, at every write of the host session (decision 202)."""
    client = make_idp(tmp_path)
    compressed: list[bytes] = []
    compress = zlib.compress

    def counting(data: bytes, *args: Any, **kwargs: Any) -> bytes:
        compressed.append(data)
        return compress(data, *args, **kwargs)

    monkeypatch.setattr(zlib, "compress", counting)
    login(client)
    cookie = client.get_cookie("idp_session")
    assert cookie is not None and not cookie.value.startswith(".")
    assert compressed == []
    assert _signed_in(client)


def test_a_compressed_session_cookie_still_opens(tmp_path: Path) -> None:
    """A cookie written before (or by Flask's own serializer, which compresses when that is
    shorter) keeps its session."""
    client = make_idp(tmp_path)
    login(client)
    app = client.application
    cookie = client.get_cookie("idp_session")
    assert cookie is not None
    data = app.session_interface.get_signing_serializer(app).loads(cookie.value)  # type: ignore[attr-defined]
    flasks = SecureCookieSessionInterface().get_signing_serializer(app)
    assert flasks is not None
    old = flasks.dumps(data)
    assert old.startswith(".")  # compressed: this payload does get shorter
    client.set_cookie("idp_session", old)
    assert _signed_in(client)


def test_a_signed_in_browser_s_session_is_not_walked_for_tags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flask's serializer tried its eight tags on every value of the session at each write and
    walked it for tags at each read; the IdP's session is a flat dict with nothing to tag."""
    client = make_idp(tmp_path)
    walked: list[object] = []
    tag, untag = TaggedJSONSerializer.tag, TaggedJSONSerializer._untag_scan

    def counting_tag(self: TaggedJSONSerializer, value: Any) -> Any:
        walked.append(value)
        return tag(self, value)

    def counting_untag(self: TaggedJSONSerializer, value: Any) -> Any:
        walked.append(value)
        return untag(self, value)

    monkeypatch.setattr(TaggedJSONSerializer, "tag", counting_tag)
    monkeypatch.setattr(TaggedJSONSerializer, "_untag_scan", counting_untag)
    login(client)
    assert _signed_in(client)
    assert walked == []


@pytest.mark.parametrize(
    "data",
    [
        {"_user_id": "alice", "_fresh": True, "auth_time": 1700000000, "x": 1.5, "y": None},
        {"ü": "é", "z": "<b>"},
        {"t": (1, 2)},
        {"b": b"\x00"},
        {"m": Markup("<b>x</b>")},
        {"d": {" t": [1]}},
        {" t": ["looks like a tag"]},
        {"when": dt.datetime(2026, 1, 2, tzinfo=dt.UTC)},
        {"u": uuid.UUID(int=7)},
        {},
    ],
)
def test_the_session_json_is_flasks(tmp_path: Path, data: dict[str, Any]) -> None:
    """Byte for byte what Flask's serializer writes, and what it reads back, for a flat session
    and for everything Flask tags (those go through Flask's own)."""
    app = make_idp(tmp_path).application
    ours = KeptSerializerSessions.serializer
    with app.app_context():
        written = ours.dumps(data)
        assert written == session_json_serializer.dumps(data)
        assert ours.loads(written) == session_json_serializer.loads(written) == data


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


def test_the_login_page_does_not_rewrite_the_host_session(tmp_path: Path) -> None:
    """The authorization request that shows a browser the sign-in form writes the host session
    once (the request it came for); the login page itself leaves it as it is. The old code had
    Flask-Login mark that session "not fresh" on the login page, which signed and set the cookie
    a second time. (A request that demands a fresh password: a plain one writes no host session
    at all, test_web_example_idp_signin_cookie.py.)"""
    client = make_idp(tmp_path)
    reg = registered(client)
    params = authorize_params(reg["client_id"], prompt="login")
    first = client.get("/authorize?" + urlencode(params))
    assert first.status_code == 200 and 'name="password"' in first.get_data(as_text=True)
    assert any(c.startswith("idp_session=") for c in first.headers.getlist("Set-Cookie"))
    # The login page itself, as the form's links or a failed password show it.
    page = client.get("/login?" + urlencode({"next": "/authorize?" + urlencode(params)}))
    assert page.status_code == 200
    assert not [c for c in page.headers.getlist("Set-Cookie") if c.startswith("idp_session=")]
    # Flask-Login still sees a session without a signed-in user as not fresh.
    with client.session_transaction() as session:
        assert session.get("_fresh") is False and "_user_id" not in session


@pytest.mark.parametrize("vary", [None, "Accept-Encoding", "Cookie", "accept-encoding,  cookie"])
@pytest.mark.parametrize(
    "state", ["untouched", "read", "written", "emptied", "empty-written", "read-unchanged"]
)
def test_the_session_save_answers_as_flasks(tmp_path: Path, vary: str | None, state: str) -> None:
    """The IdP's save_session (Vary added without werkzeug's header set) sets the same headers
    as Flask's: the same Vary, the same cookie attributes (the value is signed differently)."""
    from flask.sessions import SecureCookieSession
    from flask.wrappers import Response

    app = make_idp(tmp_path).application
    answers = []
    for interface in (KeptSerializerSessions(), SecureCookieSessionInterface()):
        session = SecureCookieSession({"_user_id": "alice"} if state != "empty-written" else {})
        if state == "read" or state == "read-unchanged":
            session.get("_user_id")
        if state == "written":
            session["auth_time"] = 1
        if state == "emptied":
            session.clear()
        if state == "empty-written":
            session["x"] = 1
            session.pop("x")
        if state == "read-unchanged":
            session.accessed, session.modified = True, False
        response = Response("ok")
        if vary is not None:
            response.headers["Vary"] = vary
        with app.test_request_context("/"):
            interface.save_session(app, session, response)
        answers.append(
            [
                (k, v.split("=", 1)[0] + "; " + v.split(";", 1)[1] if k == "Set-Cookie" else v)
                for k, v in response.headers.items()
            ]
        )
    assert answers[0] == answers[1]


def test_a_host_page_parses_no_vary_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Flask parsed the Vary header into werkzeug's header set and wrote it back up to twice per
    request of the host's pages."""
    import werkzeug.sansio.response as sansio_response

    client = make_idp(tmp_path)
    login(client)
    parsed: list[object] = []
    parse = sansio_response.parse_set_header

    def counting(value: Any, on_update: Any = None) -> Any:
        parsed.append(value)
        return parse(value, on_update)

    monkeypatch.setattr(sansio_response, "parse_set_header", counting)
    response = client.get("/")
    assert "Sign out" in response.get_data(as_text=True)
    assert response.headers["Vary"] == "Cookie"
    assert parsed == []
