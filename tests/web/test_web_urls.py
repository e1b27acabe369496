"""``WebApp.url``: the fast path for rules without variable parts builds what werkzeug builds."""

from __future__ import annotations

from typing import Any

import pytest
from webtest import Browser

from oidc_combinedreg.web.app import _URLS

VALUES: list[dict[str, Any]] = [
    {},
    {"c": "Zx8_-a1"},
    {"back": "admin"},
    {"c": "a b/c?d&e=f+g#h", "lng": "de"},
    {"c": None},
    {"method": "m1", "n": 3},
    {"c": "é ü"},
]


@pytest.mark.parametrize("values", VALUES, ids=[repr(v) for v in VALUES])
def test_fixed_paths_with_a_query_match_werkzeug(browser: Browser, values: dict[str, Any]) -> None:
    web = browser.reg.web
    werkzeug = _URLS.bind("localhost", script_name=web.prefix)
    fixed = [rule.endpoint for rule in _URLS.iter_rules() if not rule.arguments]
    assert {"signin", "mfa", "wizard", "manage"} <= set(fixed)
    for endpoint in fixed:
        assert web.url(endpoint, **values) == werkzeug.build(endpoint, values)


def test_paths_with_variable_parts_still_go_through_werkzeug(browser: Browser) -> None:
    web = browser.reg.web
    werkzeug = _URLS.bind("localhost", script_name=web.prefix)
    url = web.url("delete", method_id="m 1", c="x")
    assert url == werkzeug.build("delete", {"method_id": "m 1", "c": "x"})
    assert url.startswith(f"{web.prefix}/methods/m%201/delete?")
