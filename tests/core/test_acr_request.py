"""The acr decision table of docs/oidc.md ("acr_values and claims"), row by row (issue 17 item 2).

OIDC Core 3.1.2.1: ``acr_values`` are voluntary, in order of preference; 5.5.1.1: an essential
``acr`` with values must be met, or the sign-in fails."""

from __future__ import annotations

import json

import pytest

from oidc_combinedreg.policy.acr import (
    AcrDemand,
    AcrLevel,
    AcrRequest,
    acr_demand,
    parse_acr_request,
)

PWD, MFA, PHR = "urn:pwd", "urn:mfa", "urn:phr"
LEVELS = {PWD: AcrLevel.PASSWORD, MFA: AcrLevel.MFA, PHR: AcrLevel.PHISHING_RESISTANT}
P, M, R = AcrLevel.PASSWORD, AcrLevel.MFA, AcrLevel.PHISHING_RESISTANT

ROWS = [
    # (values, essential, reachable, may_register, expected)
    pytest.param((), False, M, True, AcrDemand(), id="no acr request demands nothing"),
    pytest.param((PWD, MFA), False, M, True, AcrDemand(level=P),
                 id="a pwd-first list is met by the password even for a user with MFA"),
    pytest.param((MFA, PWD), False, M, True, AcrDemand(level=M),
                 id="an mfa-first list asks a user with a method for MFA"),
    pytest.param((MFA, PWD), False, P, True, AcrDemand(level=P),
                 id="an mfa-first list falls back to pwd for a user without a method"),
    pytest.param((MFA,), False, P, True, AcrDemand(),
                 id="a voluntary mfa the user cannot reach pushes no one into the wizard"),
    pytest.param((MFA,), False, P, False, AcrDemand(),
                 id="a voluntary mfa leaves an excluded break-glass account alone"),
    pytest.param(("urn:unknown", MFA), False, M, True, AcrDemand(level=M),
                 id="an unknown value is passed over"),
    pytest.param(("urn:unknown",), True, M, True, AcrDemand(unmet=True),
                 id="an essential request naming only unknown values is unmet"),
    pytest.param((PHR, MFA), False, M, True, AcrDemand(level=M),
                 id="phishing resistance out of reach falls back to mfa"),
    pytest.param((PHR, MFA), False, R, True, AcrDemand(level=R),
                 id="phishing resistance is asked of a user with a security key"),
    pytest.param((MFA,), True, M, True, AcrDemand(level=M),
                 id="an essential mfa is asked of a user with a method"),
    pytest.param((MFA,), True, P, True, AcrDemand(level=M, register=True),
                 id="an essential mfa sends a user inside the registration policy to the wizard"),
    pytest.param((MFA,), True, P, False, AcrDemand(unmet=True),
                 id="an essential mfa never overrides an exclusion: unmet for break-glass"),
    pytest.param((PHR,), True, M, True, AcrDemand(unmet=True),
                 id="an essential phishing resistance without a security key is unmet"),
    pytest.param((PHR, PWD), True, M, True, AcrDemand(level=P),
                 id="an essential list met by its pwd value needs nothing more"),
]  # fmt: skip


@pytest.mark.parametrize(("values", "essential", "reachable", "may_register", "expected"), ROWS)
def test_acr_decision_table(
    values: tuple[str, ...],
    essential: bool,
    reachable: AcrLevel,
    may_register: bool,
    expected: AcrDemand,
) -> None:
    request = AcrRequest(values=values, essential=essential)
    assert acr_demand(request, LEVELS, reachable=reachable, may_register=may_register) == expected


def _claims(acr: object) -> str:
    return json.dumps({"id_token": {"acr": acr}})


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({}, AcrRequest(), id="nothing asked"),
        pytest.param({"acr_values": f"{PWD}  {MFA}"}, AcrRequest(values=(PWD, MFA)),
                     id="acr_values keep their order"),
        pytest.param({"claims": _claims({"essential": True, "values": [MFA]})},
                     AcrRequest(values=(MFA,), essential=True), id="claims essential values"),
        pytest.param({"claims": _claims({"essential": True, "value": MFA})},
                     AcrRequest(values=(MFA,), essential=True), id="claims essential value"),
        pytest.param({"claims": _claims({"values": [MFA]}), "acr_values": PWD},
                     AcrRequest(values=(MFA,)), id="claims values win over acr_values"),
        pytest.param({"claims": _claims({"essential": True}), "acr_values": MFA},
                     AcrRequest(values=(MFA,)), id="claims acr without values defers to acr_values"),
        pytest.param({"claims": "not json", "acr_values": MFA}, AcrRequest(values=(MFA,)),
                     id="claims that are not json add nothing"),
        pytest.param({"claims": _claims({"essential": "yes", "values": [MFA]})},
                     AcrRequest(values=(MFA,)), id="essential must be the json true"),
        pytest.param({"claims": json.dumps({"userinfo": {"acr": {"values": [MFA]}}})},
                     AcrRequest(), id="an acr asked for userinfo only is not the id token's"),
    ],
)  # fmt: skip
def test_parsing_the_acr_request(params: dict[str, str], expected: AcrRequest) -> None:
    assert parse_acr_request(params) == expected
