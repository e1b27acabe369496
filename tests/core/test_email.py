"""The email method: address checks, registration by a code sent to it, change, reset codes, and
never MFA (SECURITY.md cases 21 and 34)."""

from __future__ import annotations

import pytest
from codes_env import Env, make_env

from oidc_combinedreg.delivery.base import Channel, DeliveryFailed
from oidc_combinedreg.exceptions import ChallengeExpired, InvalidInput, VerificationFailed
from oidc_combinedreg.methods.email import mask_email, parse_email
from oidc_combinedreg.methods.kinds import MethodKind


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [
        pytest.param("alice@example.com", "alice@example.com", id="plain"),
        pytest.param("  alice@EXAMPLE.com ", "alice@example.com", id="spaces and domain case"),
        pytest.param("alice+sspr@example.co.uk", "alice+sspr@example.co.uk", id="plus addressing"),
        pytest.param("jörg@bücher.example", "jörg@bücher.example", id="internationalized"),
    ],
)
def test_addresses_are_normalized(typed: str, normalized: str) -> None:
    assert parse_email(typed) == normalized


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param("", id="empty"),
        pytest.param("alice", id="no at sign"),
        pytest.param("alice@", id="no domain"),
        pytest.param("@example.com", id="no local part"),
        pytest.param("alice@@example.com", id="two at signs"),
        pytest.param("alice@example", id="no dot in the domain"),
        pytest.param("a" * 300 + "@example.com", id="too long"),
        pytest.param(None, id="missing"),
    ],
)
def test_bad_addresses_are_refused_on_the_email_field(typed: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_email(typed)
    assert caught.value.field == "email"


def test_masking() -> None:
    assert mask_email("alice@example.com") == "a••••@example.com"


@pytest.fixture
def env() -> Env:
    return make_env()


def test_registration_sends_a_code_and_binds_only_after_it(env: Env) -> None:
    svc = env.info.email
    sent, state = svc.register_begin("alice", address="Alice.Home@Example.org", ip=None)
    message = env.sender.emails[-1]
    assert message.to == "Alice.Home@example.org" and message.tag == "code"
    assert "<html" in message.html and env.sender.last_code() in message.html
    assert sent.masked.endswith("@example.org")
    assert env.store.list_methods("alice") == []
    record = svc.register_complete("alice", state, env.sender.last_code(), ip=None)
    assert record.kind is MethodKind.EMAIL and record.data["email"] == "Alice.Home@example.org"


def test_a_refused_recipient_leaves_no_method_and_nothing_pending(env: Env) -> None:
    env.sender.fail_next(Channel.EMAIL, "recipient refused", permanent=True)
    with pytest.raises(DeliveryFailed):
        env.info.email.register_begin("alice", address="nobody@example.org", ip=None)
    assert env.store.list_methods("alice") == []


def test_email_is_never_an_mfa_method(env: Env) -> None:
    assert MethodKind.EMAIL not in env.info.verifiers
    assert not hasattr(env.info.email, "verify") and not hasattr(env.info.email, "start")
    _, state = env.info.email.register_begin("alice", address="a@example.org", ip=None)
    env.info.email.register_complete("alice", state, env.sender.last_code(), ip=None)
    assert env.info.mfa_methods("alice") == []


def test_reset_codes_last_as_configured_and_at_most_a_day() -> None:
    env = make_env(delivery={"codes": {"reset_email_ttl": 3600}})
    svc = env.info.email
    _, state = svc.register_begin("alice", address="a@example.org", ip=None)
    record = svc.register_complete("alice", state, env.sender.last_code(), ip=None)
    env.clock.advance(61)
    sent, reset = svc.send_reset_code("alice", record, ip=None)
    assert sent.expires_in == 3600
    env.clock.advance(3599)
    svc.check_reset_code("alice", record, reset, env.sender.last_code(), ip=None)
    env.clock.advance(61)
    _, reset = svc.send_reset_code("alice", record, ip=None)
    env.clock.advance(3600)
    with pytest.raises(ChallengeExpired):
        svc.check_reset_code("alice", record, reset, env.sender.last_code(), ip=None)
    with pytest.raises(Exception, match="86400"):
        make_env(delivery={"codes": {"reset_email_ttl": 2 * 86400}})


def test_a_registration_code_is_not_a_reset_code(env: Env) -> None:
    svc = env.info.email
    _, state = svc.register_begin("alice", address="a@example.org", ip=None)
    record = svc.register_complete("alice", state, env.sender.last_code(), ip=None)
    env.clock.advance(61)
    _, pending = svc.register_begin("bob", address="b@example.org", ip=None)
    with pytest.raises((ChallengeExpired, VerificationFailed)):
        svc.check_reset_code(
            "alice",
            record,
            {"method_id": record.id, "challenge": pending["challenge"]},
            env.sender.last_code(),
            ip=None,
        )
