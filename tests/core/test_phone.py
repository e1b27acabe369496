"""Phone methods: parsing against libphonenumber's own examples, refusals, registration, change,
MFA by text or call, the office phone. SECURITY.md cases 21 and 33."""

from __future__ import annotations

import phonenumbers
import pytest
from codes_env import Env, make_env
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from oidc_combinedreg.delivery.base import Channel, DeliveryFailed
from oidc_combinedreg.exceptions import (
    AccessDenied,
    InvalidInput,
    LimitReached,
    VerificationFailed,
)
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.methods.otp_codes import Purpose
from oidc_combinedreg.methods.phone import mask_phone, parse_phone
from oidc_combinedreg.service.phone import OFFICE_PHONE_ID

REGIONS = ["US", "GB", "DE", "FR", "JP", "IN", "BR", "AU", "ZA", "CH"]


def _example(
    region: str, kind: PhoneNumberType = PhoneNumberType.MOBILE
) -> phonenumbers.PhoneNumber:
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None, (region, kind)
    return number


@pytest.mark.parametrize("region", REGIONS)
def test_libphonenumbers_own_examples_parse_to_e164_as_typed_nationally(region: str) -> None:
    example = _example(region)
    national = phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL)
    expected = phonenumbers.format_number(example, PhoneNumberFormat.E164)
    assert parse_phone(national, region) == expected
    # International format with another country picked: the + prefix wins.
    international = phonenumbers.format_number(example, PhoneNumberFormat.INTERNATIONAL)
    assert parse_phone(international, "US" if region != "US" else "GB") == expected


@pytest.mark.parametrize("region", REGIONS)
def test_the_generic_example_number_parses(region: str) -> None:
    example = phonenumbers.example_number(region)
    assert example is not None
    e164 = phonenumbers.format_number(example, PhoneNumberFormat.E164)
    assert parse_phone(e164, region) == e164


@pytest.mark.parametrize(
    ("region", "kind"),
    [
        pytest.param("US", PhoneNumberType.PREMIUM_RATE, id="US premium rate"),
        pytest.param("GB", PhoneNumberType.PREMIUM_RATE, id="GB premium rate"),
        pytest.param("GB", PhoneNumberType.VOIP, id="GB voip"),
        pytest.param("DE", PhoneNumberType.PREMIUM_RATE, id="DE premium rate"),
        pytest.param("FR", PhoneNumberType.SHARED_COST, id="FR shared cost"),
        pytest.param("GB", PhoneNumberType.PERSONAL_NUMBER, id="GB personal number"),
    ],
)
def test_premium_rate_and_voip_numbers_are_refused(region: str, kind: PhoneNumberType) -> None:
    number = phonenumbers.format_number(_example(region, kind), PhoneNumberFormat.E164)
    with pytest.raises(InvalidInput) as caught:
        parse_phone(number, region)
    assert caught.value.field == "number" and "VoIP" in caught.value.message


@pytest.mark.parametrize(
    ("typed", "region", "field"),
    [
        pytest.param("", "US", "number", id="empty"),
        pytest.param("   ", "US", "number", id="blank"),
        pytest.param("hello", "US", "number", id="letters"),
        pytest.param("123", "US", "number", id="too short"),
        pytest.param("415 555 0123 4567 8901", "US", "number", id="too long for the country"),
        pytest.param("+999 1234567", "US", "number", id="unknown country code"),
        pytest.param("020 7946 0018", "US", "number", id="a UK number with the US picked"),
        pytest.param("4155550123", "XX", "country", id="an unknown country"),
        pytest.param("4" * 100, "US", "number", id="a huge value"),
        pytest.param(None, "US", "number", id="missing"),
    ],
)
def test_bad_numbers_get_a_message_on_the_right_field(
    typed: object, region: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_phone(typed, region)
    assert caught.value.field == field and caught.value.message


def test_allowed_regions_restrict_numbers() -> None:
    gb = phonenumbers.format_number(_example("GB"), PhoneNumberFormat.E164)
    with pytest.raises(InvalidInput):
        parse_phone(gb, "GB", allowed_regions=frozenset({"US"}))


def test_masking_keeps_the_country_code_and_two_digits() -> None:
    assert mask_phone("+14155550123") == "+1 XXXXXXXX23"


# -- the service ---------------------------------------------------------------------------------

NUMBER = "+14155550123"


@pytest.fixture
def env() -> Env:
    return make_env()


def test_nothing_is_bound_before_the_code_comes_back(env: Env) -> None:
    svc = env.info.mobile_phone
    sent, state = svc.register_begin(
        "alice", number="(415) 555-0123", region="US", channel="sms", ip=None
    )
    assert sent.masked == "+1 XXXXXXXX23" and sent.channel == "sms" and sent.expires_in == 600
    assert env.sender.texts[-1].to == NUMBER
    assert env.store.list_methods("alice") == []
    wrong = "000000" if env.sender.last_code() != "000000" else "111111"
    with pytest.raises(VerificationFailed):
        svc.register_complete("alice", state, wrong, ip=None)
    assert env.store.list_methods("alice") == []
    record = svc.register_complete("alice", state, env.sender.last_code(NUMBER), ip=None)
    assert record.data["phone"] == NUMBER and record.label == "+1 XXXXXXXX23"
    assert [m.kind for m in env.store.list_methods("alice")] == [MethodKind.MOBILE_PHONE]


def test_a_call_verifies_a_mobile_phone_and_the_call_says_the_code(env: Env) -> None:
    svc = env.info.mobile_phone
    _, state = svc.register_begin(
        "alice", number="4155550123", region="US", channel="voice", ip=None
    )
    call = env.sender.calls[-1]
    assert call.to == NUMBER and ", ".join(call.code) in call.say
    svc.register_complete("alice", state, env.sender.last_code(NUMBER), ip=None)


def test_an_alternate_phone_is_voice_only(env: Env) -> None:
    with pytest.raises(InvalidInput) as caught:
        env.info.alternate_phone.register_begin(
            "alice", number="4155550123", region="US", channel="sms", ip=None
        )
    assert caught.value.field == "channel"
    assert env.sender.texts == []


def test_one_mobile_phone_per_user(env: Env) -> None:
    svc = env.info.mobile_phone
    _, state = svc.register_begin("alice", number="4155550123", region="US", channel="sms", ip=None)
    svc.register_complete("alice", state, env.sender.last_code(), ip=None)
    with pytest.raises(LimitReached):
        svc.register_begin("alice", number="4155550124", region="US", channel="sms", ip=None)


def test_a_change_is_a_new_verified_binding_and_the_old_number_stays_until_then(env: Env) -> None:
    svc = env.info.mobile_phone
    _, state = svc.register_begin("alice", number="4155550123", region="US", channel="sms", ip=None)
    record = svc.register_complete("alice", state, env.sender.last_code(), ip=None)
    env.clock.advance(61)
    _, change = svc.register_begin(
        "alice", number="4155550199", region="US", channel="sms", ip=None, replace_id=record.id
    )
    assert env.store.get_method("alice", record.id).data["phone"] == NUMBER  # type: ignore[union-attr]
    changed = svc.register_complete("alice", change, env.sender.last_code("+14155550199"), ip=None)
    assert changed.id == record.id
    assert env.store.get_method("alice", record.id).data["phone"] == "+14155550199"  # type: ignore[union-attr]
    assert [e.event for e in env.store.list_audit(event_prefix="method.")][0] == "method.changed"


def test_changing_someone_elses_phone_is_refused(env: Env) -> None:
    svc = env.info.mobile_phone
    _, state = svc.register_begin("bob", number="4155550123", region="US", channel="sms", ip=None)
    bobs = svc.register_complete("bob", state, env.sender.last_code(), ip=None)
    with pytest.raises(AccessDenied):
        svc.register_begin(
            "alice", number="4155550177", region="US", channel="sms", ip=None, replace_id=bobs.id
        )


def test_a_failed_delivery_is_a_clear_error_and_leaves_nothing_pending(env: Env) -> None:
    env.sender.fail_next(Channel.SMS, "the gateway answered 503 (after 3 attempts)")
    with pytest.raises(DeliveryFailed) as caught:
        env.info.mobile_phone.register_begin(
            "alice", number="4155550123", region="US", channel="sms", ip=None
        )
    assert "503" in caught.value.reason
    assert env.store.list_methods("alice") == []
    assert env.store.list_audit(event_prefix="code.send_failed")


def test_mfa_by_text_gives_sms_and_by_call_gives_tel(env: Env) -> None:
    svc = env.info.mobile_phone
    _, state = svc.register_begin("alice", number="4155550123", region="US", channel="sms", ip=None)
    record = svc.register_complete("alice", state, env.sender.last_code(), ip=None)
    user = env.directory.get_user("alice")
    assert user is not None
    for via, amr in (("sms", ("sms",)), ("voice", ("tel",))):
        env.clock.advance(61)
        mfa_state: dict[str, object] = {"method_id": record.id, "via": via}
        page = svc.start(user, record, mfa_state, ip=None)
        assert page["masked"] == "+1 XXXXXXXX23" and page["channel"] == via
        assert svc.verify(user, record, {"code": env.sender.last_code()}, mfa_state, ip=None) == amr


def test_the_office_phone_comes_from_the_directory_read_only_and_by_voice() -> None:
    env = make_env(office_phone="+1 (415) 555-0100")
    methods = env.info.methods("alice")
    office = [m for m in methods if m.kind is MethodKind.OFFICE_PHONE]
    assert len(office) == 1 and office[0].id == OFFICE_PHONE_ID
    assert office[0].data["phone"] == "+14155550100"
    assert env.info.mfa_methods("alice") == office
    assert env.store.list_methods("alice") == []  # not stored
    assert not env.info.delete_method("alice", OFFICE_PHONE_ID, ip=None)
    user = env.directory.get_user("alice")
    assert user is not None
    state: dict[str, object] = {"method_id": OFFICE_PHONE_ID}
    assert env.info.office_phone.start(user, office[0], state, ip=None)["channel"] == "voice"
    assert env.sender.calls[-1].to == "+14155550100"
    amr = env.info.office_phone.verify(
        user, office[0], {"code": env.sender.last_code()}, state, ip=None
    )
    assert amr == ("tel",)
    with pytest.raises(AccessDenied):
        env.info.office_phone.register_begin(
            "alice", number="4155550100", region="US", channel="voice", ip=None
        )


def test_no_office_phone_without_a_voice_provider() -> None:
    env = make_env(office_phone="+14155550100")
    env.info.office_phone.delivery = env.sender.delivery().__class__(email=env.sender)
    assert env.info.methods("alice") == []


def test_a_reset_code_api_for_the_password_reset_flow(env: Env) -> None:
    svc = env.info.mobile_phone
    _, state = svc.register_begin("alice", number="4155550123", region="US", channel="sms", ip=None)
    record = svc.register_complete("alice", state, env.sender.last_code(), ip=None)
    env.clock.advance(61)
    sent, reset = svc.send_code("alice", record, Purpose.RESET, channel="sms", ip=None)
    assert sent.masked.endswith("23")
    svc.check_code("alice", record, reset, env.sender.last_code(), Purpose.RESET, ip=None)
