"""A little throttle on failed logins: per user name, and (more loosely) per client IP."""

from __future__ import annotations

from oidc_combinedreg.clock import Clock

from .db import Database

__all__ = ["LoginThrottle"]

IP_FACTOR = 10


class LoginThrottle:
    def __init__(self, db: Database, clock: Clock, *, allowed: int, window: int) -> None:
        self._db = db
        self._clock = clock
        self._allowed = allowed
        self._window = window

    def _keys(self, username: str, ip: str) -> tuple[tuple[str, int], ...]:
        # Unknown user names are counted too: the throttle must not tell which accounts exist.
        return (f"user:{username.casefold()}", self._allowed), (
            f"ip:{ip}",
            self._allowed * IP_FACTOR,
        )

    def retry_after(self, username: str, ip: str) -> int:
        """Seconds until another attempt is allowed; 0 when one is allowed now."""
        now = self._clock.now()
        wait = 0.0
        for key, allowed in self._keys(username, ip):
            rows = self._db.fetch_all(
                "SELECT at FROM login_failures WHERE key = ? AND at > ? ORDER BY at DESC LIMIT ?",
                (key, now - self._window, allowed),
            )
            if len(rows) >= allowed:
                wait = max(wait, rows[-1]["at"] + self._window - now)
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, username: str, ip: str) -> None:
        now = self._clock.now()
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM login_failures WHERE at <= ?", (now - self._window,))
            for key, _ in self._keys(username, ip):
                conn.execute("INSERT INTO login_failures (key, at) VALUES (?, ?)", (key, now))

    def succeeded(self, username: str) -> None:
        self._db.execute(
            "DELETE FROM login_failures WHERE key = ?", (f"user:{username.casefold()}",)
        )
