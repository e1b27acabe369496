"""A little throttle on failed logins of the example IdP's own pages (password, Temporary Access Pass).

Anyone who knows a user name reaches these pages, so no limit may let a stranger lock the owner out
(SECURITY.md case 57). Three windowed limits, nothing durable:

* per user name *from one client IP* (``allowed``): a caller that keeps failing is refused alone;
* per user name from all addresses (``allowed`` x 10): bounds guessing spread over many addresses,
  for one window; a refused try does not count here, so one address cannot fill it;
* per client IP over all names (``allowed`` x 10).

Each page has its own counters (``kind``): wrong passes on the TAP page never refuse the password.
Unknown user names are counted too: the throttle must not tell which accounts exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from oidc_combinedreg.clock import Clock

from .db import Database

__all__ = ["Attempt", "LoginThrottle"]

IP_FACTOR = 10
USER_FACTOR = 10


@dataclass(frozen=True, slots=True)
class Attempt:
    """What the throttle found before an attempt."""

    #: seconds until another attempt is allowed; 0 when one is allowed now
    wait: int
    #: whether the user's counters (this address's, all addresses') hold failures in the window
    user_failures: bool


class LoginThrottle:
    def __init__(self, db: Database, clock: Clock, *, allowed: int, window: int) -> None:
        self._db = db
        self._clock = clock
        self._allowed = allowed
        self._window = window

    def _keys(self, username: str, ip: str, kind: str) -> tuple[tuple[str, int], ...]:
        name = username.casefold()
        # An address holds no "|", so the first one ends it: no name makes another pair's key.
        return (
            (f"{kind}:from:{ip}|{name}", self._allowed),
            (f"{kind}:user:{name}", self._allowed * USER_FACTOR),
            (f"{kind}:ip:{ip}", self._allowed * IP_FACTOR),
        )

    def check(self, username: str, ip: str, kind: str = "password") -> Attempt:
        """Whether an attempt is allowed now, and what :meth:`succeeded` will have to clear."""
        now = self._clock.now()
        keys = self._keys(username, ip, kind)
        # One query for the three counters: each holds at most its limit within the window
        # (a refused try is not counted), so this reads a bounded number of rows.
        rows = self._db.fetch_all(
            "SELECT key, at FROM login_failures WHERE key IN (?, ?, ?) AND at > ?",
            (*(key for key, _ in keys), now - self._window),
        )
        wait = 0.0
        for key, allowed in keys:
            times = sorted((row["at"] for row in rows if row["key"] == key), reverse=True)
            if len(times) >= allowed:
                wait = max(wait, times[allowed - 1] + self._window - now)
        user_keys = (keys[0][0], keys[1][0])
        return Attempt(
            wait=int(wait) + 1 if wait > 0 else 0,
            user_failures=any(row["key"] in user_keys for row in rows),
        )

    def failed(self, username: str, ip: str, kind: str = "password") -> None:
        """Count a failed try (only tries :meth:`check` let through reach this)."""
        now = self._clock.now()
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM login_failures WHERE at <= ?", (now - self._window,))
            for key, _ in self._keys(username, ip, kind):
                conn.execute("INSERT INTO login_failures (key, at) VALUES (?, ?)", (key, now))

    def succeeded(
        self, username: str, ip: str, kind: str = "password", checked: Attempt | None = None
    ) -> None:
        """Clear the user's counters (this address's and all addresses'), never the address's.

        ``checked``: what :meth:`check` found for this attempt. When it found no failure of the
        user in the window there is nothing to clear and nothing is read again (decision 203):
        a failure older than the window never counts again (every count is of the window), and
        one counted after the check is as if it came after this success."""
        if checked is not None and not checked.user_failures:
            return
        pair, user, _ = (key for key, _ in self._keys(username, ip, kind))
        # Most sign-ins have nothing to clear: a read, and the write lock only when there is.
        if self._db.fetch_one(
            "SELECT 1 FROM login_failures WHERE key IN (?, ?) LIMIT 1", (pair, user)
        ):
            self._db.execute("DELETE FROM login_failures WHERE key IN (?, ?)", (pair, user))
