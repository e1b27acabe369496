"""Reports against a seeded data set whose figures are known by construction."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from oidc_combinedreg import parse_config
from oidc_combinedreg.admin.reports import (
    AUDIT_COLUMNS,
    REGISTRATION_COLUMNS,
    RegistrationRow,
    audit_row,
    iso,
    parse_iso,
    registration_row,
    render,
    usage_summary,
)
from oidc_combinedreg.crypto import generate_key
from oidc_combinedreg.directory import DirectoryUser
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.policy.config import PolicyConfig
from oidc_combinedreg.store.base import AuditEvent, MethodRecord, UserState

T0 = 1_700_000_000.0
DAY = 86400.0
K = MethodKind


def policies(**sspr: Any) -> PolicyConfig:
    config = parse_config(
        {
            "general": {"environment": "development"},
            "web": {"secure_cookies": False},
            "secrets": {"encryption_keys": [generate_key()]},
            "policies": {
                "sspr": {
                    "enabled_for": "selected",
                    "groups": ["staff"],
                    "methods": ["totp", "mobile_phone", "email", "security_questions"],
                    **sspr,
                },
                "methods": {
                    "security_questions": {"enabled": True},
                    "mobile_phone": {"exclude_groups": ["no-phone"]},
                },
            },
        }
    )
    return config.policies


def record(user: str, kind: MethodKind, n: int = 0) -> MethodRecord:
    return MethodRecord(
        id=f"{user}-{kind.value}-{n}", user_id=user, kind=kind, label="", created_at=T0 + n
    )


STAFF = frozenset({"staff"})
#: user -> (directory entry, methods, state)
SEED: dict[str, tuple[DirectoryUser | None, list[MethodRecord], UserState]] = {
    "alice": (
        DirectoryUser(id="alice", display_name="Alice", groups=STAFF),
        [record("alice", K.TOTP), record("alice", K.MOBILE_PHONE, 1)],
        UserState(user_id="alice", default_method_id="alice-mobile_phone-1"),
    ),
    "bob": (
        DirectoryUser(id="bob", groups=STAFF),
        [record("bob", K.EMAIL)],
        UserState(user_id="bob"),
    ),
    "carol": (
        DirectoryUser(id="carol", groups=STAFF),
        [record("carol", K.SECURITY_QUESTIONS)],
        UserState(user_id="carol"),
    ),
    "dave": (
        DirectoryUser(id="dave"),  # not staff: out of the SSPR policy's scope
        [record("dave", K.WEBAUTHN), record("dave", K.TOTP, 1)],
        UserState(user_id="dave"),
    ),
    "erin": (None, [], UserState(user_id="erin", reregister=True)),
    "frank": (
        DirectoryUser(id="frank", groups=STAFF, enabled=False),
        [record("frank", K.TOTP)],
        UserState(user_id="frank"),
    ),
    "george": (
        DirectoryUser(id="george", groups=STAFF | {"no-phone"}),
        [record("george", K.MOBILE_PHONE)],
        UserState(user_id="george"),
    ),
}

#: user -> (mfa_capable, sspr_registered, sspr_capable, default_method, methods)
EXPECTED = {
    "alice": (True, True, True, "mobile_phone", ("totp", "mobile_phone")),
    "bob": (False, True, True, None, ("email",)),
    "carol": (False, False, False, None, ("security_questions",)),
    "dave": (True, True, False, "webauthn", ("webauthn", "totp")),
    "erin": (False, False, False, None, ()),
    "frank": (False, True, False, "totp", ("totp",)),
    "george": (False, True, True, "mobile_phone", ("mobile_phone",)),
}


def rows(p: PolicyConfig | None = None) -> list[RegistrationRow]:
    p = p or policies()
    return [registration_row(uid, u, m, s, p) for uid, (u, m, s) in SEED.items()]


@pytest.mark.parametrize("user_id", list(EXPECTED))
def test_registration_details_per_user(user_id: str) -> None:
    row = next(r for r in rows() if r.user_id == user_id)
    got = (row.mfa_capable, row.sspr_registered, row.sspr_capable, row.default_method, row.methods)
    assert got == EXPECTED[user_id]


def test_a_user_the_directory_does_not_know_is_marked() -> None:
    by_id = {r.user_id: r for r in rows()}
    assert by_id["erin"].in_directory is False and by_id["erin"].display_name == "erin"
    assert by_id["alice"].in_directory is True and by_id["alice"].display_name == "Alice"


@pytest.mark.parametrize(
    ("sspr", "user_id", "registered"),
    [
        pytest.param({}, "carol", False, id="questions alone never register a user for reset"),
        pytest.param(
            {"allow_questions_alone": True}, "carol", True, id="unless the config allows it"
        ),
        pytest.param(
            {"methods_required": 2}, "alice", True, id="two methods required, alice has two"
        ),
        pytest.param({"methods_required": 2}, "bob", False, id="two required, bob has one"),
    ],
)
def test_sspr_registered_follows_the_policy(
    sspr: dict[str, Any], user_id: str, registered: bool
) -> None:
    row = next(r for r in rows(policies(**sspr)) if r.user_id == user_id)
    assert row.sspr_registered is registered


def ev(at: float, event: str, outcome: str = "success", **detail: Any) -> AuditEvent:
    return AuditEvent(at=at, event=event, user_id="alice", outcome=outcome, detail=detail)


IN, BEFORE = T0 + 5 * DAY, T0 - 5 * DAY
EVENTS = [
    ev(IN, "method.added", kind="totp"),
    ev(IN, "method.added", kind="totp"),
    ev(IN, "method.added", kind="email"),
    ev(BEFORE, "method.added", kind="totp"),  # outside the period
    ev(IN, "method.add_failed", "failure", reason="code"),
    ev(IN, "method.add_failed", "failure", reason="code"),
    ev(IN, "method.add_failed", "failure", reason="duplicate"),
    *[ev(IN, "reset.started", "info") for _ in range(3)],
    ev(IN, "reset.completed"),
    ev(IN, "reset.failed", "failure", reason="wrong_code"),
    ev(IN, "reset.failed", "failure", reason="wrong_code"),
    *[ev(IN, "mfa.succeeded") for _ in range(4)],
    ev(IN, "mfa.failed", "failure"),  # no reason
    ev(IN, "tap.issued"),
    ev(IN, "tap.used"),
    ev(IN, "tap.failed", "failure", reason="expired"),
    ev(IN, "tap.failed", "failure", reason="used"),
    ev(IN, "signin.password"),
    ev(T0 + 10 * DAY, "method.added", kind="totp"),  # at `until`: excluded
]


def summary() -> dict[str, Any]:
    methods = {uid: m for uid, (_, m, _) in SEED.items()}
    return usage_summary(rows(), methods, EVENTS, since=T0, until=T0 + 10 * DAY).to_json()


def test_usage_counts_users_by_capability() -> None:
    s = summary()
    assert (s["users"], s["mfa_capable"], s["sspr_registered"], s["sspr_capable"]) == (7, 2, 5, 3)
    assert (s["since"], s["until"]) == ("2023-11-14T22:13:20Z", "2023-11-24T22:13:20Z")


def test_usage_counts_methods_by_kind_most_secure_first() -> None:
    assert summary()["methods"] == {
        "webauthn": {"methods": 1, "users": 1, "added": 0},
        "totp": {"methods": 3, "users": 3, "added": 2},
        "mobile_phone": {"methods": 2, "users": 2, "added": 0},
        "email": {"methods": 1, "users": 1, "added": 1},
        "security_questions": {"methods": 1, "users": 1, "added": 0},
    }


@pytest.mark.parametrize(
    ("activity", "expected"),
    [
        pytest.param(
            "registration",
            {
                "started": 0,
                "succeeded": 3,
                "failed": 3,
                "failed_by_reason": {"code": 2, "duplicate": 1},
            },
            id="registration: added in the period, failures by reason",
        ),
        pytest.param(
            "reset",
            {"started": 3, "succeeded": 1, "failed": 2, "failed_by_reason": {"wrong_code": 2}},
            id="reset: started, succeeded, failed by reason",
        ),
        pytest.param(
            "mfa",
            {"started": 0, "succeeded": 4, "failed": 1, "failed_by_reason": {"unspecified": 1}},
            id="mfa: a failure without a reason is unspecified",
        ),
        pytest.param(
            "tap",
            {
                "started": 1,
                "succeeded": 1,
                "failed": 2,
                "failed_by_reason": {"expired": 1, "used": 1},
            },
            id="tap: issued, used, failed by reason",
        ),
    ],
)
def test_usage_activity(activity: str, expected: dict[str, Any]) -> None:
    assert summary()["activity"][activity] == expected


def test_audit_rows_carry_who_what_when_where_outcome_and_correlation() -> None:
    event = AuditEvent(
        at=T0,
        event="ca.evaluated",
        user_id="alice",
        outcome="blocked",
        ip="203.0.113.5",
        correlation_id="c-1",
        detail={"reason": "location"},
    )
    assert audit_row(event) == {
        "at": "2023-11-14T22:13:20Z",
        "event": "ca.evaluated",
        "user_id": "alice",
        "ip": "203.0.113.5",
        "outcome": "blocked",
        "correlation_id": "c-1",
        "detail": {"reason": "location"},
    }


def test_render_as_table_csv_and_json() -> None:
    data = [r.to_json() for r in rows()]
    table = render(data, REGISTRATION_COLUMNS, "table").splitlines()
    assert table[0].split() == list(REGISTRATION_COLUMNS)
    assert table[1].startswith("-------")
    assert table[2].split() == [
        "alice",
        "Alice",
        "yes",
        "yes",
        "yes",
        "yes",
        "mobile_phone",
        "totp",
        "mobile_phone",
        "no",
    ]
    parsed = list(csv.DictReader(io.StringIO(render(data, REGISTRATION_COLUMNS, "csv"))))
    assert len(parsed) == 7 and parsed[1]["user_id"] == "bob" and parsed[1]["mfa_capable"] == "no"
    assert json.loads(render(data, REGISTRATION_COLUMNS, "json")) == data
    audit = render([audit_row(ev(T0, "x.y", detail="a,b"))], AUDIT_COLUMNS, "csv")
    assert list(csv.reader(io.StringIO(audit)))[1][-1] == '{"detail":"a,b"}'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2023-11-14T22:13:20Z", T0, id="UTC with Z"),
        pytest.param("2023-11-14t22:13:20z", T0, id="lower-case t and z"),
        pytest.param("2023-11-14T23:13:20+01:00", T0, id="an offset"),
        pytest.param("2023-11-14T22:13:20", T0, id="no offset means UTC"),
        pytest.param(
            "2023-11-14", T0 - (22 * 3600 + 13 * 60 + 20), id="a date is its midnight UTC"
        ),
    ],
)
def test_parse_iso(text: str, expected: float) -> None:
    assert parse_iso(text) == expected
    assert iso(expected) is not None


@pytest.mark.parametrize("text", ["yesterday", "", "2023-13-01", "0001-01-01T00:00:00+23:59"])
def test_parse_iso_refuses_what_is_not_a_time(text: str) -> None:
    with pytest.raises(ValueError):
        parse_iso(text)
