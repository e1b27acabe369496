"""Requests the middleware does not own pass through untouched; a store outage fails closed."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from plain_wsgi_host import DictDirectory, Host, make_app  # noqa: I001
from webtest import T0, Browser, base_config, location
from werkzeug.test import Client

from oidc_combinedreg import CombinedRegistration, parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.store.sqlite import SqliteStore


class FileWrapper:
    def __init__(self, fh: io.BytesIO, blksize: int = 8192) -> None:
        self.fh, self.blksize, self.closed = fh, blksize, False

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.fh.read(self.blksize), b"")

    def close(self) -> None:
        self.closed = True


def host(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/stream":
        start_response(
            "206 Partial Content", [("Content-Type", "text/x-test"), ("X-A", "1"), ("X-A", "2")]
        )
        return (f"chunk{i};".encode() for i in range(5))
    if path == "/file":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"x" * 20000), 4096)
    start_response("418 I'm a teapot", [("Content-Type", "text/plain"), ("Set-Cookie", "a=b")])
    return [b"body:", environ.get("QUERY_STRING", "").encode()]


@pytest.fixture
def wrapped(tmp_path: Path) -> CombinedRegistration:
    config = parse_config(base_config(tmp_path))
    return CombinedRegistration(
        host,
        config=config,
        directory=DictDirectory(),
        store=SqliteStore(str(tmp_path / "s.db"), clock=FrozenClock(T0)),
        authorization=Host(),
    )


@pytest.mark.parametrize(
    "path", ["/stream", "/file", "/anything?x=1", "/security-infox", "/authorizex"]
)
def test_requests_not_owned_pass_through_unchanged(
    wrapped: CombinedRegistration, path: str
) -> None:
    bare = Client(host).get(path, environ_base={"wsgi.file_wrapper": FileWrapper})
    through = Client(wrapped).get(path, environ_base={"wsgi.file_wrapper": FileWrapper})
    assert through.status == bare.status
    assert list(through.headers.items()) == list(bare.headers.items())
    assert through.get_data() == bare.get_data()


def test_the_file_wrapper_object_itself_is_returned(wrapped: CombinedRegistration) -> None:
    captured: list[Any] = []
    environ = {"PATH_INFO": "/file", "REQUEST_METHOD": "GET", "wsgi.file_wrapper": FileWrapper}
    body = wrapped(environ, lambda status, headers, exc_info=None: captured.append(status))
    assert isinstance(body, FileWrapper)  # servers can still use sendfile()
    assert captured == ["200 OK"]


class SwitchableStore(SqliteStore):
    """A real SQLite store whose backend can be taken down, like a stopped database server."""

    down = False

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if callable(attr) and not name.startswith("_") and object.__getattribute__(self, "down"):

            def fail(*args: Any, **kwargs: Any) -> Any:
                raise StoreUnavailable("store is down")

            return fail
        return attr


@pytest.fixture
def outage_browser(tmp_path: Path) -> Iterator[tuple[Browser, SwitchableStore]]:
    clock = FrozenClock(T0)
    store = SwitchableStore(str(tmp_path / "s.db"), clock=clock)
    reg, h = make_app(
        parse_config(base_config(tmp_path)), DictDirectory(), store=store, clock=clock
    )
    yield Browser(reg, h, clock), store
    store.down = False
    store.close()


def test_store_down_at_authorize_is_a_503_and_never_a_code(
    outage_browser: tuple[Browser, SwitchableStore],
) -> None:
    browser, store = outage_browser
    browser.login("alice")
    store.down = True
    r = browser.get_json("/authorize?client_id=demo")
    assert r.status_code == 503 and r.get_json()["error"] == "store_unavailable"
    assert browser.host.codes == {}


def test_store_down_in_the_wizard_is_a_503_then_the_user_continues(
    outage_browser: tuple[Browser, SwitchableStore],
) -> None:
    browser, store = outage_browser
    browser.login("alice")
    wizard = location(browser.authorize())
    token = browser.csrf(wizard)
    store.down = True
    r = browser.post_json(wizard, {"action": "next", "csrf_token": token})
    assert r.status_code == 503
    html = browser.get(wizard)
    assert html.status_code == 503 and b"security service" in html.get_data()
    store.down = False
    assert browser.get_json(wizard).get_json()["page"] == "totp_intro"
    assert browser.reg.store.list_methods("alice") == []


def test_passthrough_still_works_when_the_store_is_down(
    outage_browser: tuple[Browser, SwitchableStore],
) -> None:
    browser, store = outage_browser
    store.down = True
    assert browser.get("/hello").get_data() == b"hello from the host"
