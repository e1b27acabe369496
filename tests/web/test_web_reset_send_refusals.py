"""A refused code send at the anonymous password reset is audited once per address and window
(decision 188's rule, for ``code.send_refused``): a caller repeating the reset for one account
from one address must not write a row per try to the audit log and to the owner's Recent
activity page."""

from __future__ import annotations

from pathlib import Path

import pytest
from reset_helpers import ResetEnv, phone_env, reset_call

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.service.refusal_audit import REFUSAL_WINDOW


@pytest.fixture
def env(tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> ResetEnv:
    return phone_env(tmp_path, clock, monkeypatch)


def refused(env: ResetEnv) -> list[object]:
    return list(env.store.list_audit(event_prefix="code.send_refused", limit=1000))


def test_one_address_repeating_refused_sends_is_audited_once_per_window(env: ResetEnv) -> None:
    statuses = [reset_call(env, "203.0.113.7") for _ in range(12)]
    assert statuses[:3] == [303, 303, 303] and set(statuses[3:]) == {429}
    assert len(env.sender.calls) == 3  # the quota still refuses every one of them
    events = refused(env)
    assert len(events) == 1, [e.detail for e in events]  # type: ignore[attr-defined]
    assert events[0].detail["repeats_not_audited_s"] == REFUSAL_WINDOW  # type: ignore[attr-defined]
    # After the window the same address is audited again, once.
    env.browser.clock.advance(REFUSAL_WINDOW)
    reset_call(env, "203.0.113.7")
    reset_call(env, "203.0.113.7")
    assert len(refused(env)) == 2


def test_another_address_is_audited_on_its_own(env: ResetEnv) -> None:
    for _ in range(5):
        reset_call(env, "203.0.113.7")
    reset_call(env, "198.51.100.9")
    addresses = {e.ip for e in refused(env)}  # type: ignore[attr-defined]
    assert addresses == {"203.0.113.7", "198.51.100.9"}
