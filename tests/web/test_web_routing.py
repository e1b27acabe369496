"""The web app's routing: a path without variable parts is answered by a dict lookup
(``WebApp._by_path``) instead of werkzeug's matcher; the answer must be the matcher's."""

from __future__ import annotations

import pytest
from webtest import Browser
from werkzeug.exceptions import HTTPException

from oidc_combinedreg.web.app import _URLS


def test_every_fixed_path_is_looked_up_as_the_matcher_answers_it(browser: Browser) -> None:
    web = browser.reg.web
    fixed = [rule for rule in _URLS.iter_rules() if not rule.arguments]
    assert fixed and {rule.rule: rule.endpoint for rule in fixed} == web._by_path
    for rule in fixed:
        assert web._router.match(rule.rule) == (rule.endpoint, {})
        assert web._match(rule.rule) == (rule.endpoint, {}, None)


@pytest.mark.parametrize("path", ["/admin", "/mfa/", "/signin/", "/methods/x/delete", "/add/totp"])
def test_other_paths_go_to_the_matcher(browser: Browser, path: str) -> None:
    web = browser.reg.web
    assert path not in web._by_path
    try:
        expected = (*web._router.match(path), None)
    except HTTPException as exc:  # "/admin": werkzeug's redirect to "/admin/"; "/mfa/": 404
        endpoint, args, raised = web._match(path)
        assert (endpoint, args, type(raised)) == ("", {}, type(exc))
    else:
        assert web._match(path) == expected
