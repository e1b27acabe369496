"""Failed-attempt throttling for codes, per account and per client IP, on the store's atomic counters.

Three counters (SECURITY.md cases 27, 49):
* consecutive failures per account, durable, reset only by a success: at most ``max_consecutive_failures``
  (NIST SP 800-63B's 100), after which codes are refused until an admin or a success elsewhere resets it;
* failures per account within a window: a short cool-down that slows guessing long before that;
* failures per client IP within a window: one attacker cannot spread guesses over many accounts.
Every attempt is counted before its code can be accepted, so parallel guesses cannot exceed the
limit (a code may be computed before; it is accepted, or refused, only after the count).
"""

from __future__ import annotations

from .config.model import ThrottleConfig
from .exceptions import RateLimited
from .store.base import Store

__all__ = ["Attempt", "Throttle"]


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
