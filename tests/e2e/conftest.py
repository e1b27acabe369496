"""A real example IdP (oidc_combinedreg mounted) served over HTTP in a thread, once per session.

Use ``idp_server.url`` (the issuer, ``http://localhost:PORT``: WebAuthn needs ``localhost``) from any
HTTP client or browser. State persists across the session: give each test its own client/browser
context and, for MFA flows, its own user or a fresh sign-in.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from example_idp import create_app
from oidc_combinedreg.clock import FrozenClock

EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"


@dataclass(frozen=True)
class IdpServer:
    #: the issuer and base URL, e.g. ``http://localhost:43125``
    url: str
    app: Flask
    #: the IdP's instance folder (signing key, sqlite files, the middleware's store)
    instance_path: Path


@pytest.fixture(scope="session")
def idp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdpServer]:
    with serve_example_idp(tmp_path_factory.mktemp("example-idp")) as server:
        yield server


@contextmanager
def serve_example_idp(root: Path) -> Iterator[IdpServer]:
    """The example IdP with a fresh instance folder under ``root``, served until the block ends
    (for tests that need every demo account as new, whatever the session's server has seen)."""
    # The config's relative paths ("instance/...") resolve next to the copy: root/instance.
    config = shutil.copy(EXAMPLE_IDP / "combinedreg.toml", root / "combinedreg.toml")
    apps: list[Flask] = []

    def dispatch(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return apps[0](environ, start_response)  # type: ignore[return-value]

    # Bind first (port 0 = a free port, no race), then build the app with the issuer it needs.
    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    url = f"http://localhost:{server.server_port}"
    apps.append(create_app(instance_path=root / "instance", issuer=url, combinedreg_config=config))
    thread = threading.Thread(target=server.serve_forever, name="example-idp", daemon=True)
    thread.start()
    try:
        yield IdpServer(url=url, app=apps[0], instance_path=root / "instance")
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@dataclass(frozen=True)
class FrozenIdpServer(IdpServer):
    #: the server's clock: move it with ``clock.advance(seconds)`` (MFA freshness, expiry)
    clock: FrozenClock


@pytest.fixture(scope="session")
def frozen_idp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrozenIdpServer]:
    """A second example IdP whose clock only moves when a test moves it (its own users' state)."""
    root = tmp_path_factory.mktemp("example-idp-frozen")
    config = shutil.copy(EXAMPLE_IDP / "combinedreg.toml", root / "combinedreg.toml")
    clock = FrozenClock(float(int(time.time())))
    apps: list[Flask] = []

    def dispatch(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return apps[0](environ, start_response)  # type: ignore[return-value]

    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    url = f"http://localhost:{server.server_port}"
    apps.append(
        create_app(
            instance_path=root / "instance", issuer=url, combinedreg_config=config, clock=clock
        )
    )
    thread = threading.Thread(target=server.serve_forever, name="example-idp-frozen", daemon=True)
    thread.start()
    try:
        yield FrozenIdpServer(url=url, app=apps[0], instance_path=root / "instance", clock=clock)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


#: Debian's Chromium, headless (RECIPES.md); never ``playwright install``
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Any]:
    """One headless Chromium for the whole session; tests take a context each (cheap).

    Every browser test must use this fixture rather than start Playwright itself: the sync API
    allows one running driver per thread, so a second one would fail while this one lives.
    """
    if not shutil.which("chromium"):
        pytest.skip("needs Debian's chromium (make sysdeps)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()
