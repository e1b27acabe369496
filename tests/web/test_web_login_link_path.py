"""The return address after a sign-in keeps a non-ASCII path as the browser sent it."""

from __future__ import annotations

from urllib.parse import quote

from oidc_combinedreg.web.login_link import same_origin_next


def test_a_non_ascii_path_comes_back_encoded_once() -> None:
    path = "/sécurité/security-info"
    # what a WSGI server puts in the environ for that path: its UTF-8 bytes as latin-1 characters
    environ = {"SCRIPT_NAME": "", "PATH_INFO": path.encode().decode("latin-1"), "QUERY_STRING": ""}
    assert same_origin_next(environ) == quote(path)  # /s%C3%A9curit%C3%A9/security-info


def test_an_ascii_path_and_its_query_are_kept() -> None:
    environ = {"SCRIPT_NAME": "/idp", "PATH_INFO": "/security-info", "QUERY_STRING": "lng=de"}
    assert same_origin_next(environ) == "/idp/security-info?lng=de"
