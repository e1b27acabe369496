"""Issue 23.7: the default send budgets hold through one person's ordinary hour.

The hour (docs/delivery.md, "Send budgets"): registering a phone (the first text does not come, so
"send again") and an email address, four sign-ins with a text code each where the text is slow and
the user asks again, and a password reset proved by email and phone (the text sent again too).
Everything from one address, within one hour. The old defaults (10 per user, 5 per number)
refused the sixth sign-in text.
"""

from __future__ import annotations

from codes_env import make_env

from oidc_combinedreg.methods.otp_codes import Purpose

NUMBER = "+14155550123"
ADDRESS = "alice.private@example.com"
IP = "198.51.100.7"


def test_an_ordinary_hour_fits_the_default_send_budgets() -> None:
    env = make_env()  # no [delivery.codes]: the defaults
    start = env.clock.now()
    wait = 61  # the resend cool-down (60 s) and a little

    # A phone, registered: the first text does not arrive, so "send again".
    phone = env.info.mobile_phone
    _, state = phone.register_begin("alice", number=NUMBER, region="US", channel="sms", ip=IP)
    env.clock.advance(wait)
    _, state = phone.resend("alice", state, ip=IP)
    record = phone.register_complete("alice", state, env.sender.last_code(NUMBER), ip=IP)

    # An email address, registered.
    email = env.info.email
    _, estate = email.register_begin("alice", address=ADDRESS, ip=IP)
    email_record = email.register_complete("alice", estate, env.sender.last_code(ADDRESS), ip=IP)

    # Four sign-ins with a text code each; every time the text is slow and she asks again.
    for _ in range(4):
        env.clock.advance(5 * 60)
        _, mfa = phone.send_code("alice", record, Purpose.MFA, channel="sms", ip=IP)
        env.clock.advance(wait)
        _, mfa = phone.send_code("alice", record, Purpose.MFA, channel="sms", ip=IP, state=mfa)
        code = env.sender.last_code(NUMBER)
        assert phone.check_code("alice", record, mfa, code, Purpose.MFA, ip=IP) == ("sms",)

    # A password reset with two methods: an email code, then a text (sent again too).
    env.clock.advance(5 * 60)
    _, rstate = email.send_reset_code("alice", email_record, ip=IP)
    email.check_reset_code("alice", email_record, rstate, env.sender.last_code(ADDRESS), ip=IP)
    _, pstate = phone.send_code("alice", record, Purpose.RESET, channel="sms", ip=IP)
    env.clock.advance(wait)
    _, pstate = phone.send_code("alice", record, Purpose.RESET, channel="sms", ip=IP, state=pstate)
    code = env.sender.last_code(NUMBER)
    assert phone.check_code("alice", record, pstate, code, Purpose.RESET, ip=IP) == ("sms",)

    assert env.clock.now() - start < 3600  # all of it within one budget window
    assert env.store.list_audit(event_prefix="code.send_refused") == []
    sent = [e for e in env.store.list_audit(event_prefix="code.sent")]
    assert len(sent) == 2 + 1 + 8 + 3
