"""Temporary Access Pass over a real store: issue, verify, one-time use, expiry, revocation."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from oidc_combinedreg import parse_config
from oidc_combinedreg.admin.config import TapConfig
from oidc_combinedreg.admin.tap import TapService, normalize_code
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.config.model import ThrottleConfig
from oidc_combinedreg.crypto import fast_hasher_for_tests, generate_key
from oidc_combinedreg.directory import DirectoryUser
from oidc_combinedreg.exceptions import InvalidInput, RateLimited, VerificationFailed
from oidc_combinedreg.service import SecurityInfo
from oidc_combinedreg.store import MemoryStore, SqliteStore, Store
from oidc_combinedreg.throttle import Throttle

IP = "192.0.2.10"


def _config(tmp_path: Path) -> object:
    return parse_config(
        {
            "general": {"environment": "development"},
            "web": {"secure_cookies": False},
            "secrets": {"encryption_keys": [generate_key()]},
            "storage": {"sqlite": {"path": str(tmp_path / "tap.sqlite3")}},
        }
    )


def _service(store: Store, clock: FrozenClock, tmp_path: Path, **tap: int | bool) -> TapService:
    config = _config(tmp_path)
    info = SecurityInfo(config=config, store=store, clock=clock)  # type: ignore[arg-type]
    return TapService(info.ctx, TapConfig(**tap), fast_hasher_for_tests())  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1_700_000_000.0)


@pytest.fixture
def store(clock: FrozenClock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture
def taps(store: MemoryStore, clock: FrozenClock, tmp_path: Path) -> TapService:
    return _service(store, clock, tmp_path)


def _reasons(store: Store) -> list[str]:
    return [str(e.detail.get("reason")) for e in store.list_audit(event_prefix="tap.failed")]


def test_a_pass_is_shown_once_and_only_its_hash_is_stored(
    taps: TapService, store: MemoryStore
) -> None:
    tap = taps.issue("alice", minutes=60, one_time=True, actor="ops")
    assert len(normalize_code(tap.code)) == 16 and tap.code.count("-") == 3
    stored = store.peek_challenge("tap:alice")
    assert stored is not None and stored["hash"].startswith("$argon2id$")
    assert normalize_code(tap.code) not in repr(stored) and tap.code not in repr(stored)
    status = taps.status("alice")
    assert status is not None and status.to_json().keys() == {
        "id",
        "created_at",
        "expires_at",
        "one_time",
        "issued_by",
        "usable",
    }
    issued = store.list_audit(event_prefix="tap.issued")[0]
    assert tap.code not in repr(issued) and issued.detail["actor"] == "ops"


def test_typed_with_spaces_and_lower_case_it_still_signs_in(taps: TapService) -> None:
    tap = taps.issue("alice", minutes=60, one_time=False, actor="ops")
    typed = " " + tap.code.replace("-", " ").lower() + " "
    assert taps.verify("alice", typed, ip=IP) == tap.id


def test_a_one_time_pass_signs_in_once(taps: TapService, store: MemoryStore) -> None:
    tap = taps.issue("alice", minutes=60, one_time=True, actor="ops")
    taps.verify("alice", tap.code, ip=IP)
    with pytest.raises(VerificationFailed) as exc:
        taps.verify("alice", tap.code, ip=IP)
    assert exc.value.reason == "used"
    assert _reasons(store) == ["used"]


def test_a_multi_use_pass_signs_in_until_it_expires(
    taps: TapService, clock: FrozenClock, store: MemoryStore
) -> None:
    tap = taps.issue("alice", minutes=60, one_time=False, actor="ops")
    for _ in range(3):
        assert taps.verify("alice", tap.code, ip=IP) == tap.id
        clock.advance(600)
    clock.advance(60 * 60)
    with pytest.raises(VerificationFailed) as exc:
        taps.verify("alice", tap.code, ip=IP)
    assert exc.value.reason == "expired"


@pytest.mark.parametrize(
    ("minutes", "ok"),
    [
        pytest.param(9, False, id="nine minutes is shorter than the minimum"),
        pytest.param(10, True, id="ten minutes is the minimum"),
        pytest.param(30 * 24 * 60, True, id="thirty days is the maximum"),
        pytest.param(30 * 24 * 60 + 1, False, id="a minute more than thirty days is refused"),
    ],
)
def test_lifetime_bounds(taps: TapService, minutes: int, ok: bool) -> None:
    if ok:
        assert taps.issue("alice", minutes=minutes, one_time=True, actor="ops").code
    else:
        with pytest.raises(InvalidInput):
            taps.issue("alice", minutes=minutes, one_time=True, actor="ops")


def test_the_config_can_narrow_the_maximum(
    store: MemoryStore, clock: FrozenClock, tmp_path: Path
) -> None:
    taps = _service(store, clock, tmp_path, max_lifetime_minutes=120, default_lifetime_minutes=60)
    assert taps.issue("alice", actor="ops").expires_at == clock.now() + 3600
    with pytest.raises(InvalidInput):
        taps.issue("alice", minutes=121, actor="ops")


def test_a_revoked_pass_fails(taps: TapService, store: MemoryStore) -> None:
    tap = taps.issue("alice", minutes=60, one_time=False, actor="ops")
    assert taps.revoke("alice", actor="ops") is True
    assert taps.revoke("alice", actor="ops") is False
    with pytest.raises(VerificationFailed) as exc:
        taps.verify("alice", tap.code, ip=IP)
    assert exc.value.reason == "revoked"
    assert taps.status("alice") is None


def test_a_new_pass_replaces_the_old_one(taps: TapService) -> None:
    old = taps.issue("alice", minutes=60, one_time=False, actor="ops")
    new = taps.issue("alice", minutes=60, one_time=False, actor="ops")
    with pytest.raises(VerificationFailed):
        taps.verify("alice", old.code, ip=IP)
    assert taps.verify("alice", new.code, ip=IP) == new.id


def test_another_users_pass_does_not_sign_in_this_user(taps: TapService) -> None:
    tap = taps.issue("alice", minutes=60, one_time=False, actor="ops")
    with pytest.raises(VerificationFailed) as exc:
        taps.verify("bob", tap.code, ip=IP)
    assert exc.value.reason == "none"


def test_wrong_passes_are_throttled_and_a_late_right_one_does_not_pass(
    taps: TapService, store: MemoryStore
) -> None:
    tap = taps.issue("alice", minutes=60, one_time=True, actor="ops")
    for _ in range(10):  # [throttle].failures_per_window
        with pytest.raises(VerificationFailed):
            taps.verify("alice", "AAAA-AAAA-AAAA-AAAA", ip=IP)
    with pytest.raises(RateLimited):
        taps.verify("alice", tap.code, ip=IP)
    assert store.peek_challenge("tap:alice") is not None  # not consumed by the refused try


def test_an_expired_pass_is_not_revealed_to_someone_without_the_code(
    taps: TapService, clock: FrozenClock, store: MemoryStore
) -> None:
    taps.issue("alice", minutes=10, one_time=True, actor="ops")
    clock.advance(11 * 60)
    with pytest.raises(VerificationFailed) as exc:
        taps.verify("alice", "AAAA-AAAA-AAAA-AAAA", ip=IP)
    assert exc.value.reason == "wrong_code"


def test_two_parallel_uses_of_a_one_time_pass_exactly_one_succeeds(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """SECURITY.md case 38's rule for a one-time secret, through SQLite with real threads."""
    path = str(tmp_path / "race.sqlite3")
    stores = [SqliteStore(path, clock=clock) for _ in range(8)]
    try:
        services = [_service(s, clock, tmp_path) for s in stores]
        for round_ in range(5):
            tap = services[0].issue("alice", minutes=60, one_time=True, actor="ops")
            results = _race(services, tap.code, ip=f"192.0.2.{round_}")
            assert results.count("ok") == 1, results
            # A loser that read after the winner's take sees no pass at all: "none" or "used".
            assert set(results) <= {"ok", "used", "none"}, results
            # Every attempt counts against alice's throttle window: start each round afresh.
            clock.advance(301)
    finally:
        for s in stores:
            s.close()


def _race(services: list[TapService], code: str, *, ip: str) -> list[str]:
    barrier = threading.Barrier(len(services))
    results: list[str] = []

    def use(service: TapService) -> None:
        barrier.wait()
        try:
            service.verify("alice", code, ip=ip)
            results.append("ok")
        except VerificationFailed as exc:
            results.append(exc.reason)

    threads = [threading.Thread(target=use, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# -- SECURITY.md case 57: the TAP page is open to anyone who knows a user name ----------------


def _sign_in_throttle(store: Store) -> Throttle:
    return Throttle(store, ThrottleConfig())


def test_wrong_passes_never_move_the_sign_in_counters(taps: TapService, store: MemoryStore) -> None:
    """120 wrong passes for alice (who has none), from 12 addresses: her MFA codes are not locked."""
    for n in range(120):
        with pytest.raises((VerificationFailed, RateLimited)):
            taps.verify("alice", "AAAA-AAAA-AAAA-AAAA", ip=f"198.51.100.{n // 10}")
    assert store.get_count("fail:user:alice:consecutive") == 0
    assert store.get_count("fail:user:alice:window") == 0
    _sign_in_throttle(store).check("alice", "192.0.2.99")  # raises nothing


def test_wrong_passes_from_one_address_do_not_block_the_owner_elsewhere(
    taps: TapService, store: MemoryStore
) -> None:
    tap = taps.issue("alice", minutes=60, one_time=True, actor="ops")
    for _ in range(30):
        with pytest.raises((VerificationFailed, RateLimited)):
            taps.verify("alice", "AAAA-AAAA-AAAA-AAAA", ip="203.0.113.66")
    with pytest.raises(RateLimited):
        taps.verify("alice", tap.code, ip="203.0.113.66")  # that address is done for the window
    assert taps.verify("alice", tap.code, ip=IP)  # the owner's own address is not


def test_many_addresses_hit_the_account_wide_limit_for_a_window_only(
    taps: TapService, store: MemoryStore, clock: FrozenClock
) -> None:
    tap = taps.issue("alice", minutes=120, one_time=True, actor="ops")
    limit = TapConfig().account_failures_per_window
    for n in range(limit):
        with pytest.raises(VerificationFailed):
            taps.verify("alice", "AAAA-AAAA-AAAA-AAAA", ip=f"198.51.{n // 5}.1")
    with pytest.raises(RateLimited):
        taps.verify("alice", tap.code, ip=IP)
    assert _reasons(store)[0] == "throttled"
    clock.advance(TapConfig().window)
    assert taps.verify("alice", tap.code, ip=IP)


def test_unknown_names_count_like_known_ones(taps: TapService, store: MemoryStore) -> None:
    """Wrong passes for names nobody has are counted on the same address limit: one address
    cannot burn Argon2 on endless made-up names, and a throttled address gets the same fast
    refusal for every name, so the refusal tells nothing about which accounts exist."""
    tap = taps.issue("alice", minutes=60, one_time=True, actor="ops")
    alice = DirectoryUser(id="alice")
    for n in range(TapConfig().ip_failures_per_window):
        assert taps.sign_in(None, f"ghost{n}", "AAAA-AAAA-AAAA-AAAA", ip="203.0.113.66") is None
    assert taps.sign_in(alice, "alice", tap.code, ip="203.0.113.66") is None
    assert _reasons(store)[0] == "throttled"
    assert taps.sign_in(None, "ghost-x", "AAAA", ip="203.0.113.66") is None
    assert _reasons(store)[0] == "throttled", "refused like a known name: no Argon2, same answer"
    assert taps.sign_in(alice, "alice", tap.code, ip=IP)  # from her own address
