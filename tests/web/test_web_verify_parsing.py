"""The verify's per-request parsing, by hand where the standard library's is Python code that
does more than the verify needs (issue 22): a query string or form body without anything
encoded is split instead of unquoted part by part, and a stored TOTP secret of base32 letters
is read as one number. Each gives exactly what the library gives, for any input."""

from __future__ import annotations

import base64
import binascii
import random
from urllib.parse import parse_qsl, urlencode

import pyotp
import pytest
from webtest import Browser

from oidc_combinedreg.methods.totp import secret_bytes
from oidc_combinedreg.web.app import _QUERY_SAFE
from oidc_combinedreg.web.context import parse_pairs


def _outcome(call: object, text: str) -> object:
    try:
        return call(text)  # type: ignore[operator]
    except (ValueError, binascii.Error) as exc:
        return type(exc)


def test_pairs_are_what_parse_qsl_gives() -> None:
    rng = random.Random(22)
    texts = ["", "&", "a", "a=", "=b", "a=b=c", "c=x&c=y", "a+b=c%20d", "x=%zz", "é=ü&;=;"]
    texts += [
        "".join(rng.choice("ab=&;%+2F-_é") for _ in range(rng.randint(0, 14))) for _ in range(20000)
    ]
    for text in texts:
        assert parse_pairs(text) == parse_qsl(text, keep_blank_values=True), text


def test_a_verify_form_is_split_without_unquoting(monkeypatch: pytest.MonkeyPatch) -> None:
    from oidc_combinedreg.web import context

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("parse_qsl called")

    monkeypatch.setattr(context, "parse_qsl", refused)
    form = "action=verify&csrf_token=Ab-_9x&method_id=ZzCHWjNG3L1LG1e3CmouCA&code=123456"
    assert dict(parse_pairs(form))["code"] == "123456"


def test_a_secret_decodes_as_base32_decodes_it() -> None:
    rng = random.Random(22)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcdefghijklmnopqrstuvwxyz"
    secrets = [pyotp.random_base32() for _ in range(200)] + ["", "A", "AB", "ABC", "ABCDEFGHI="]
    secrets += [
        "".join(rng.choice(letters) for _ in range(rng.randint(0, 40))) for _ in range(20000)
    ]
    secrets += [
        "".join(rng.choice(letters + "0189=-é ") for _ in range(rng.randint(0, 20)))
        for _ in range(20000)
    ]
    for secret in secrets:
        padded = secret + "=" * (-len(secret) % 8)
        expected = _outcome(lambda s: base64.b32decode(s, casefold=True), padded)
        assert _outcome(secret_bytes, secret) == expected, secret
    assert secret_bytes("JBSWY3DPEHPK3PXP") == b"Hello!\xde\xad\xbe\xef"


def test_cookies_are_what_werkzeug_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    """A browser's plain ``a=b; c=d`` header is split without werkzeug's pair-by-pair matching;
    anything else (quotes, stray spaces, non-ASCII, read as UTF-8) is werkzeug's, a byte that
    is not UTF-8 replaced (werkzeug.http.parse_cookie raised on it: a 500 for any stranger,
    tests/web/test_web_garbled_headers.py)."""
    from werkzeug.sansio.http import parse_cookie

    def werkzeugs(header: str) -> dict[str, str]:
        return parse_cookie(header.encode("latin-1").decode("utf-8", "replace")).to_dict()

    from oidc_combinedreg.web import session

    rng = random.Random(22)
    plain = [
        "; ".join(
            f"{''.join(rng.choice('abc') for _ in range(rng.randint(1, 3)))}"
            f"={''.join(rng.choice('xy=,-') for _ in range(rng.randint(0, 4)))}"
            for _ in range(rng.randint(1, 4))
        )
        for _ in range(10000)
    ]
    odd = [
        "".join(rng.choice(' \t=";\\,aB1é\xc3\xa9') for _ in range(rng.randint(0, 14)))
        for _ in range(20000)
    ]
    for header in [*plain, *odd, "", 'a="x\\"y"', "a=1;b=2", " a=1"]:
        expected = werkzeugs(header)
        assert session._parse_cookies(header) == expected, header

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("werkzeug's parse_cookie called")

    monkeypatch.setattr(session, "parse_cookie", refused)
    environ = {"HTTP_COOKIE": "host=eyJ.x-y; combinedreg_session=k.s-_1; lang=de"}
    assert session.request_cookies(environ)["combinedreg_session"] == "k.s-_1"


def test_a_redirect_is_built_as_urlencode_builds_it(browser: Browser) -> None:
    """``?c=<continuation>`` on every redirect of a sign-in: nothing in it needs quoting, so it
    is joined as is; other values are quoted as before."""
    web = browser.reg.web
    rng = random.Random(22)
    values = ["", "mV043wBp-XoDeP-T", "a b", "a+b", "é", "x/y?z", "~._-", "100%"]
    values += [
        "".join(rng.choice("aZ9_.~-+ /%&=é") for _ in range(rng.randint(0, 8))) for _ in range(5000)
    ]
    path = web.url("signin")
    for value in values:
        expected = f"{path}?{urlencode([('c', value)], safe=_QUERY_SAFE)}"
        assert web.url("signin", c=value) == expected, value
    assert web.url("signin", c=None) == path
    assert web.url("mfa", c="a", method="b c") == f"{web.url('mfa')}?c=a&method=b+c"
