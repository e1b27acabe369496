"""The acr decision table of docs/oidc.md through the WSGI stack (issue 17 item 2): acr_values as
a preference order (OIDC Core 3.1.2.1), an essential acr in ``claims`` (5.5.1.1), a client's
``default_acr_values`` from the host, and exclusions no relying party overrides."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pyotp
import pytest
from plain_wsgi_host import CLIENTS, Host
from reset_helpers import add_totp
from webtest import Browser, code_from, location

from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.base import MethodRecord

PWD, MFA, PHR = "urn:combinedreg:acr:pwd", "urn:combinedreg:acr:mfa", "urn:combinedreg:acr:phr"
#: MFA only where the RP asks: no policy makes these sign-ins need it
RP_DECIDES: dict[str, Any] = {
    "policies": {
        "mfa_registration": {"enforced": False, "exclude_groups": ["break-glass"]},
        "wizard_preference": ["totp"],
    }
}
BREAK_GLASS = {"bob": frozenset({"break-glass"})}


def essential(*values: str) -> str:
    claims = {"id_token": {"acr": {"essential": True, "values": list(values)}}}
    return "claims=" + quote(json.dumps(claims))


def outcome(browser: Browser, user: str, query: str) -> tuple[str, Any]:
    """Sign ``user`` in, send the request and follow the middleware: ("code", the issued claims),
    ("mfa"/"wizard", its page as JSON) or ("error", the RP's error)."""
    browser.login(user)
    r = browser.get(f"/authorize?client_id=demo&state=s&{query}")
    while r.status_code == 303 and location(r).startswith("/security-info/signin"):
        r = browser.get(location(r))
    url = location(r)
    if url.startswith("/security-info/mfa"):
        return "mfa", {**browser.get_json(url).get_json(), "url": url}
    if url.startswith("/security-info/wizard"):
        return "wizard", browser.get_json(url).get_json()
    code = code_from(r)
    if code is not None:
        return "code", browser.host.codes[code]
    assert url.startswith(CLIENTS["demo"]), (r.status_code, url)
    return "error", parse_qs(urlsplit(url).query)["error"][0]


@pytest.fixture
def rp_decides(make_browser: Callable[..., Browser]) -> Browser:
    browser = make_browser(BREAK_GLASS, **RP_DECIDES)
    # alice has an authenticator app; bob has no method
    browser.totp_secret = add_totp(browser.reg, "alice")  # type: ignore[attr-defined]
    return browser


def add_security_key(browser: Browser, user: str) -> None:
    record = MethodRecord(
        id=secrets.token_urlsafe(12), user_id=user, kind=MethodKind.WEBAUTHN,
        label="Key", created_at=browser.clock.now(),
        data={"credential_id": "AAAA", "public_key": "AAAA", "sign_count": 0},
    )  # fmt: skip
    browser.reg.store.add_method(record, limit=100)


@pytest.mark.parametrize(
    ("user", "query", "kind", "expected"),
    [
        pytest.param("alice", f"acr_values={PWD}+{MFA}", "code", PWD,
                     id="a pwd-first list gets a code at once and acr pwd"),
        pytest.param("alice", f"acr_values={MFA}+{PWD}", "mfa", None,
                     id="an mfa-first list asks a user with a method for MFA"),
        pytest.param("bob", f"acr_values={MFA}+{PWD}", "code", PWD,
                     id="an mfa-first list gives a user without a method acr pwd, no wizard"),
        pytest.param("bob", f"acr_values={MFA}", "code", PWD,
                     id="a voluntary mfa alone gives a user without a method acr pwd"),
        pytest.param("alice", f"acr_values=urn:other+{MFA}", "mfa", None,
                     id="an unknown value is passed over"),
        pytest.param("alice", essential(MFA), "mfa", None,
                     id="an essential mfa asks a user with a method for MFA"),
        pytest.param("alice", essential(PHR), "error", "access_denied",
                     id="an essential phishing resistance without a key is unmet at the rp"),
        pytest.param("bob", essential(MFA), "error", "access_denied",
                     id="an essential mfa never sends an excluded break-glass account anywhere"),
        pytest.param("alice", f"{essential(MFA)}&acr_values={PWD}", "mfa", None,
                     id="the essential claim wins over acr_values"),
    ],
)  # fmt: skip
def test_acr_request_rows(
    rp_decides: Browser, user: str, query: str, kind: str, expected: str | None
) -> None:
    got, value = outcome(rp_decides, user, query)
    assert got == kind, value
    if kind == "code":
        assert value["acr"] == expected
    elif kind == "error":
        assert value == expected


def test_an_essential_mfa_sends_a_user_inside_the_policy_to_the_wizard(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(**RP_DECIDES)  # bob is no break-glass account here
    got, page = outcome(browser, "bob", essential(MFA))
    assert got == "wizard" and page["page"] == "totp_intro"


def test_the_mfa_step_then_reports_the_requested_mfa_acr(rp_decides: Browser) -> None:
    got, page = outcome(rp_decides, "alice", f"acr_values={MFA}+{PWD}")
    assert got == "mfa"
    rp_decides.clock.advance(30)  # the registration used the current code
    code = pyotp.TOTP(rp_decides.totp_secret).at(rp_decides.clock.now())  # type: ignore[attr-defined]
    form = {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"], "code": code}
    r = rp_decides.post(page["url"], data=form)
    while r.status_code in (302, 303) and not code_from(r):
        r = rp_decides.get(location(r))
    issued = rp_decides.host.codes[code_from(r) or ""]
    assert issued["acr"] == MFA and "mfa" in issued["amr"]


def test_a_policy_mfa_is_not_lowered_by_a_pwd_first_list(
    make_browser: Callable[..., Browser],
) -> None:
    """The MFA registration policy covers alice (the default test config): pwd first or not,
    she does MFA, and the ID token says mfa (the strongest class reached among those named)."""
    browser = make_browser()
    add_totp(browser.reg, "alice")
    got, _ = outcome(browser, "alice", f"acr_values={PWD}+{MFA}")
    assert got == "mfa"


def test_the_break_glass_account_is_never_pushed_into_the_wizard_by_acr_values(
    make_browser: Callable[..., Browser],
) -> None:
    """Issue 17.2's case: the config keeps break-glass out of every interrupt; an RP asking
    for MFA (voluntarily) does not override that: a code, acr pwd."""
    browser = make_browser(BREAK_GLASS)
    got, issued = outcome(browser, "bob", f"acr_values={MFA}")
    assert got == "code" and issued["acr"] == PWD


def test_phishing_resistance_first_offers_only_the_security_key(rp_decides: Browser) -> None:
    add_security_key(rp_decides, "alice")
    got, page = outcome(rp_decides, "alice", f"acr_values={PHR}+{MFA}")
    assert got == "mfa"
    assert page["method"]["kind"] == "webauthn"
    assert [m["kind"] for m in page["others"]] == []


class DefaultsEndpoint(Host):
    """A host whose client 'demo' registered default_acr_values (OIDC Registration 2)."""

    def effective_params(
        self, environ: dict[str, Any], params: Mapping[str, str]
    ) -> Mapping[str, str] | None:
        effective = dict(params)
        effective.setdefault("acr_values", MFA)
        return effective


def test_a_clients_default_acr_values_apply_when_the_request_has_none(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(BREAK_GLASS, **RP_DECIDES)
    add_totp(browser.reg, "alice")
    browser.reg.authorization = DefaultsEndpoint()
    assert outcome(browser, "alice", "")[0] == "mfa"
    # A request with its own acr_values is not overridden by the default.
    assert outcome(browser, "alice", f"acr_values={PWD}")[0] == "code"
