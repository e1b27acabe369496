"""``[methods.push] web_app_origin`` (issue 20.6): the app's own origin, checked at load time.

An RFC 6454 origin (scheme, host, port; no path), https, or plain http on a loopback host in
development; never the IdP's own origin. Every error names the key's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from webtest import base_config

from oidc_combinedreg import parse_config
from oidc_combinedreg.config.push import web_app_origin_problems
from oidc_combinedreg.exceptions import ConfigError

PATH = "methods.push.web_app_origin"


def _config(tmp_path: Path, environment: str = "development", **push: Any) -> dict[str, Any]:
    data = base_config(tmp_path, methods={"push": {"web_app": True, "app_name": "", **push}})
    data["general"]["environment"] = environment
    if environment == "production":
        data["web"]["secure_cookies"] = True
    return data


def _errors(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://Authenticator.Example.com", "https://authenticator.example.com"),
        ("https://authenticator.example.com/", "https://authenticator.example.com"),
        ("https://authenticator.example.com:443", "https://authenticator.example.com"),
        ("https://authenticator.example.com:8443", "https://authenticator.example.com:8443"),
        ("http://127.0.0.1:8001", "http://127.0.0.1:8001"),
        ("http://localhost:80", "http://localhost"),
        ("http://app.localhost:5001", "http://app.localhost:5001"),
        ("http://[::1]:5001", "http://[::1]:5001"),
    ],
)
def test_an_origin_is_kept_as_a_browser_spells_it(
    tmp_path: Path, value: str, expected: str
) -> None:
    config = parse_config(_config(tmp_path, web_app_origin=value))
    assert config.push.web_app_origin == expected


def test_unset_means_the_idp_origin(tmp_path: Path) -> None:
    assert parse_config(_config(tmp_path)).push.web_app_origin == ""


@pytest.mark.parametrize(
    "value",
    [
        "https://authenticator.example.com/app",  # a path
        "https://authenticator.example.com?x=1",
        "https://authenticator.example.com#x",
        "https://user@authenticator.example.com",
        "http://authenticator.example.com",  # plain http off loopback
        "ftp://authenticator.example.com",
        "authenticator.example.com",
        "https://",
        "https://authenticator.example.com:99999",
    ],
)
def test_anything_but_an_origin_is_refused_naming_the_path(tmp_path: Path, value: str) -> None:
    (error,) = _errors(_config(tmp_path, web_app_origin=value))
    assert error.startswith(PATH + ": expected an origin such as 'https://")
    assert repr(value) in error


def test_plain_http_even_on_loopback_is_refused_in_production(tmp_path: Path) -> None:
    data = _config(tmp_path, "production", web_app_origin="http://127.0.0.1:8001")
    errors = [e for e in _errors(data) if e.startswith(PATH)]
    assert errors == [PATH + ": expected an https origin when general.environment is 'production'"]


def test_it_needs_the_web_app_and_no_server_url(tmp_path: Path) -> None:
    data = _config(tmp_path, web_app_origin="https://app.example.com")
    data["methods"]["push"]["web_app"] = False
    assert _errors(data) == [
        PATH + ": expected web_app = true too: it is where the web app is served"
    ]
    data = _config(
        tmp_path, web_app_origin="https://app.example.com", server_url="https://idp.example.com/s"
    )
    (error,) = _errors(data)
    assert error.startswith(PATH + ": expected no server_url with it")


def test_the_idp_origin_itself_is_refused_and_its_host_on_another_port_warned(
    tmp_path: Path,
) -> None:
    data = _config(tmp_path, web_app_origin="http://localhost:5000")
    data["methods"]["webauthn"] = {"rp_id": "localhost", "origins": ["http://localhost:5000"]}
    assert _errors(data) == [
        PATH + ": expected an origin of its own, not the IdP's (methods.webauthn.origins[0])"
    ]
    data["methods"]["push"]["web_app_origin"] = "http://localhost:5001"
    assert parse_config(data).push.web_app_origin == "http://localhost:5001"  # loads, but:
    (warning,) = web_app_origin_problems(
        "http://localhost:5001", production=False, idp_origins=("http://localhost:5000",)
    )
    assert (warning.path, warning.severity) == (PATH, "warning")
    assert "RFC 6265 8.5" in warning.message
