"""Failed-attempt throttling for codes, per account and per client IP, on the store's atomic counters.

:class:`Throttle` guards MFA codes, which only a caller who passed the password reaches. Three
counters (SECURITY.md cases 27, 49):
* consecutive failures per account, durable, reset only by a success: at most ``max_consecutive_failures``
  (NIST SP 800-63B's 100), after which codes are refused until a success elsewhere (a Temporary
  Access Pass) or an admin (``combinedreg unlock``, the admin API, the dashboard) clears it;
* failures per account within a window: a short cool-down that slows guessing long before that;
* failures per client IP within a window: one attacker cannot spread guesses over many accounts.
Every attempt is counted before its code can be accepted, so parallel guesses cannot exceed the
limit (a code may be computed before; it is accepted, or refused, only after the count).

:class:`WindowedThrottle` guards entry points that anyone who knows a user name reaches (the
Temporary Access Pass sign-in, app passwords): only windowed counters, never the durable one, so
an anonymous caller cannot lock the owner out beyond a window (SECURITY.md case 57). The secrets
there are long and random (80 bits and more), so a window bounds guessing far enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config.model import ThrottleConfig
from .exceptions import RateLimited
from .store.base import Store

__all__ = ["Attempt", "LockState", "Throttle", "WindowLimits", "WindowedThrottle"]


class Throttle:
    def __init__(self, store: Store, config: ThrottleConfig) -> None:
        self._store = store
        self._config = config

    @staticmethod
    def _keys(user_id: str, ip: str | None) -> tuple[str, str, str]:
        # One prefix per account: a store that keeps counters in key order (SQLite) finds both
        # account counters on one page. The last part never holds ":", so keys cannot collide.
        account = f"fail:user:{user_id}"
        return (f"{account}:consecutive", f"{account}:window", f"fail:ip:{ip or '-'}")

    def check(self, user_id: str, ip: str | None) -> None:
        """Raise :class:`RateLimited` if this account or IP may not try a code now."""
        consecutive, window, by_ip = self._keys(user_id, ip)
        cfg = self._config
        if self._store.get_count(consecutive) >= cfg.max_consecutive_failures:
            raise RateLimited(retry_after=cfg.window, scope="account-locked")
        if self._store.get_count(window) >= cfg.failures_per_window:
            raise RateLimited(retry_after=cfg.window, scope="user")
        if ip is not None and self._store.get_count(by_ip) >= cfg.ip_failures_per_window:
            raise RateLimited(retry_after=cfg.window, scope="ip")

    def attempt(self, user_id: str, ip: str | None) -> None:
        """Count an attempt against the account *before* its code can be accepted (atomic).

        Counting first means N parallel guesses cannot all slip under the limit; a success calls
        :meth:`succeeded` (or clears :meth:`cleared_by_success` itself), which clears the
        account's counters. The IP counter counts failures only
        (many users may share one address), so it is read here and bumped by :meth:`failed`.
        """
        consecutive, window, by_ip = self._keys(user_id, ip)
        cfg = self._config
        # One round trip. Both account counters count every attempt, also one refused by the
        # other: neither limit can be dodged, and a success clears both.
        counts = self._store.counters(
            incr=[(consecutive, None), (window, cfg.window)],
            read=[] if ip is None else [by_ip],
        )
        self._refuse(counts[0], counts[1], counts[2] if ip is not None else None)

    def begin(self, user_id: str, ip: str | None) -> Attempt:
        """:meth:`attempt` for a check that ends in one store call: the returned
        :class:`Attempt` says which counters the success clears, and counts a failure.

        Inside a transaction that the store serializes (``Store.serialized``), the counters
        are read instead of counted first: nothing outside the transaction sees between this
        read and its commit, so it commits either the failure counted (``Attempt.failed``) or
        the success with the account's counters cleared, exactly as counting first would have.
        A clean success then writes no counter at all. A refusal is counted at once."""
        if not self._store.serialized():
            self.attempt(user_id, ip)
            return Attempt(self, user_id, ip, counted=True, clears=self.cleared_by_success(user_id))
        consecutive, window, by_ip = self._keys(user_id, ip)
        counts = self._store.counters(
            read=[consecutive, window] + ([by_ip] if ip is not None else [])
        )
        try:
            self._refuse(counts[0] + 1, counts[1] + 1, counts[2] if ip is not None else None)
        except RateLimited:
            self.attempt(user_id, ip)  # counted like any attempt; refused again by its count
            raise
        clears = [
            key for key, count in zip((consecutive, window), counts[:2], strict=True) if count
        ]
        return Attempt(self, user_id, ip, counted=False, clears=clears)

    def limit_checks(self, user_id: str, ip: str | None) -> list[tuple[str, int, str]]:
        """For a store that checks the limits in the call that records a success
        (``LimitCheckedAdvance``): (counter key, limit, scope), the attempt refused if a
        counter's value before it is at its limit, as :meth:`begin` refuses; the account's two
        counters first (:meth:`cleared_by_success`). Nothing is counted before: the check and
        the success are one atomic call, and a refusal or failure is counted after
        (:meth:`refused`, ``Attempt.failed`` of ``Attempt(counted=False)``)."""
        consecutive, window, by_ip = self._keys(user_id, ip)
        cfg = self._config
        checks = [(consecutive, cfg.max_consecutive_failures, "account-locked"),
                  (window, cfg.failures_per_window, "user")]  # fmt: skip
        if ip is not None:
            checks.append((by_ip, cfg.ip_failures_per_window, "ip"))
        return checks

    def unchecked(self, user_id: str, ip: str | None) -> Attempt:
        """The :class:`Attempt` of :meth:`limit_checks`: not counted yet, clears the account's."""
        return Attempt(self, user_id, ip, counted=False, clears=self.cleared_by_success(user_id))

    def refused(self, user_id: str, ip: str | None, scope: str) -> None:
        """A store refused the attempt at a limit (:meth:`limit_checks`): count it like any
        attempt, and raise :class:`RateLimited` (by its count, or with ``scope``)."""
        self.attempt(user_id, ip)
        raise RateLimited(retry_after=self._config.window, scope=scope)

    def _refuse(self, consecutive: int, window: int, by_ip: int | None) -> None:
        """Raise :class:`RateLimited` if an attempt with these counts (its own included in the
        account's, not in the IP's) may not go on."""
        cfg = self._config
        if consecutive > cfg.max_consecutive_failures:
            raise RateLimited(retry_after=cfg.window, scope="account-locked")
        if window > cfg.failures_per_window:
            raise RateLimited(retry_after=cfg.window, scope="user")
        if by_ip is not None and by_ip >= cfg.ip_failures_per_window:
            raise RateLimited(retry_after=cfg.window, scope="ip")

    def failed(self, user_id: str, ip: str | None, *, attempt_counted: bool = True) -> None:
        """Count a failure against the IP; against the account too when its attempt was only
        read, not counted (:meth:`begin` inside a serialized transaction)."""
        consecutive, window, by_ip = self._keys(user_id, ip)
        ttl = self._config.window
        incr = [] if attempt_counted else [(consecutive, None), (window, ttl)]
        if ip is not None:
            incr.append((by_ip, ttl))
        if incr:
            self._store.counters(incr=incr)

    def succeeded(self, user_id: str) -> None:
        self._store.counters(reset=self.cleared_by_success(user_id))

    def lock_state(self, user_id: str) -> LockState:
        """What an admin sees: the account's failure counts and whether codes are refused."""
        consecutive, window, _ = self._keys(user_id, None)
        counts = self._store.counters(read=[consecutive, window])
        cfg = self._config
        return LockState(
            consecutive_failures=counts[0],
            max_consecutive_failures=cfg.max_consecutive_failures,
            window_failures=counts[1],
            failures_per_window=cfg.failures_per_window,
        )

    def unlock_keys(self, user_id: str) -> list[str]:
        """The counters an admin's unlock clears (the IP counters are not the account's)."""
        return self.cleared_by_success(user_id)

    def cleared_by_success(self, user_id: str) -> list[str]:
        """The counters a success clears, for a store call that does it with the success itself
        (``Store.advance_counter(reset=...)``) instead of :meth:`succeeded`."""
        consecutive, window, _ = self._keys(user_id, None)
        return [consecutive, window]


class Attempt:
    """One code check's attempt, from :meth:`Throttle.begin`."""

    def __init__(
        self, throttle: Throttle, user_id: str, ip: str | None, *, counted: bool, clears: list[str]
    ) -> None:
        self._throttle = throttle
        self._user_id = user_id
        self._ip = ip
        self._counted = counted
        #: the counters the success clears, in the store call that records it
        self.clears = clears

    def failed(self) -> None:
        """Count the failure: against the IP, and against the account unless already counted."""
        self._throttle.failed(self._user_id, self._ip, attempt_counted=self._counted)


@dataclass(frozen=True, kw_only=True, slots=True)
class LockState:
    """An account's code-failure counters, for admins (API, CLI, dashboard, report)."""

    consecutive_failures: int
    max_consecutive_failures: int
    window_failures: int
    failures_per_window: int

    @property
    def locked(self) -> bool:
        """Codes are refused until a success or an admin clears the durable counter."""
        return self.consecutive_failures >= self.max_consecutive_failures

    @property
    def cooling_down(self) -> bool:
        """Codes are refused until the window ends."""
        return self.window_failures >= self.failures_per_window

    def to_json(self) -> dict[str, Any]:
        return {
            "locked": self.locked,
            "cooling_down": self.cooling_down,
            "consecutive_failures": self.consecutive_failures,
            "max_consecutive_failures": self.max_consecutive_failures,
            "window_failures": self.window_failures,
            "failures_per_window": self.failures_per_window,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class WindowLimits:
    """The windowed limits of one anonymous entry point."""

    #: failures per account from one client IP: one caller blocks only itself
    per_account_ip: int
    #: failures per account from all addresses: bounds guessing spread over many addresses
    per_account: int
    #: failures per client IP over all accounts
    per_ip: int
    #: seconds
    window: int


class WindowedThrottle:
    """Windowed failure limits for an entry point anyone can reach; nothing durable.

    The per-account limit counts per (account, client IP) pair first: a single caller that
    keeps failing is refused alone, and its refused tries do not count against the account, so
    the owner, from another address, is not blocked. Only many addresses together reach the
    account-wide limit, and only for a window. Keys live under ``fail:<name>:`` apart from the
    MFA codes' counters.
    """

    def __init__(self, store: Store, name: str, limits: WindowLimits) -> None:
        self._store = store
        self._name = name
        self.limits = limits

    def _keys(self, subject: str, ip: str | None) -> tuple[str, str, str]:
        account = f"fail:{self._name}:{subject}"
        # The IP is the last part: it may hold ":" (IPv6), the subject's keys end before it.
        return (
            f"{account}:window",
            f"{account}:from:{ip or '-'}",
            f"fail:{self._name}-ip:{ip or '-'}",
        )

    def attempt(self, subject: str, ip: str | None) -> None:
        """Count an attempt before its secret is checked; raise :class:`RateLimited` if over a limit."""
        account, pair, by_ip = self._keys(subject, ip)
        lim = self.limits
        # Refused without counting first: a caller over its own limit cannot push the account's.
        pair_count, ip_count = self._store.counters(read=[pair, by_ip])
        if pair_count >= lim.per_account_ip:
            raise RateLimited(retry_after=lim.window, scope=f"{self._name}-user-ip")
        if ip is not None and ip_count >= lim.per_ip:
            raise RateLimited(retry_after=lim.window, scope=f"{self._name}-ip")
        account_count, pair_count = self._store.counters(
            incr=[(account, lim.window), (pair, lim.window)]
        )
        if pair_count > lim.per_account_ip:
            raise RateLimited(retry_after=lim.window, scope=f"{self._name}-user-ip")
        if account_count > lim.per_account:
            raise RateLimited(retry_after=lim.window, scope=f"{self._name}-user")

    def failed(self, subject: str, ip: str | None) -> None:
        """Count a failure against the client IP (the account's were counted by the attempt)."""
        if ip is not None:
            self._store.counters(incr=[(self._keys(subject, ip)[2], self.limits.window)])

    def succeeded(self, subject: str, ip: str | None) -> None:
        account, pair, _ = self._keys(subject, ip)
        self._store.counters(reset=[account, pair])

    def account_failures(self, subject: str) -> int:
        """Attempts on the account in the current window, for admins."""
        return self._store.get_count(self._keys(subject, None)[0])

    def unlock_keys(self, subject: str) -> list[str]:
        """The account-wide counter (pair counters end with their window)."""
        return [self._keys(subject, None)[0]]
