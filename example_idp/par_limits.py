"""Limits of the pushed authorization request endpoint (``/par``, RFC 9126): who may push how much.

Every push stores a request until it expires, so ``/par`` gets limits of its own (RFC 9126 2.3 names
429 for "the number of requests from a client during a particular time period"), keyed so that no
one's flood refuses anyone else (docs/security.md, SECURITY.md case 57):

* a **confidential client** that authenticated counts on its own counter (``client_pushes`` per
  ``window``) and holds at most ``pending_per_client`` pending requests; only its credentials
  move them, so a stranger cannot refuse it;
* everything else counts **per address** (``address_pushes`` per ``window``): a failed client
  authentication, and a **public client**'s push (RFC 9126 2.1: it authenticates by ``client_id``
  alone, so anyone can push as it); a public client's pending cap is per client *and* address.

Refused requests are not counted (a refused caller cannot keep its own window full), nothing
refused is stored, and the counters are windowed: nothing is durable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from oidc_combinedreg.clock import Clock

from .db import Database

__all__ = ["ParSettings", "PushLimits", "PushRefused", "par_settings"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ParSettings:
    """``[par]`` in idp.toml."""

    #: seconds over which pushes are counted
    window: int = 60
    #: pushes per window of one authenticated confidential client
    client_pushes: int = 300
    #: pushes per window from one address that are not a confidential client's (failed client
    #: authentication, public clients)
    address_pushes: int = 60
    #: pending (unexpired, unspent) requests one client may hold; a public client per address
    pending_per_client: int = 500


_KEYS = tuple(f.name for f in fields(ParSettings))


def par_settings(raw: Any, where: str) -> ParSettings:
    """``[par]`` checked: whole numbers of at least 1, no unknown keys."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a table ({', '.join(_KEYS)})")
    unknown = set(raw) - set(_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    for key, value in raw.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{where}.{key}: expected a whole number of at least 1")
    return ParSettings(**raw)


class PushRefused(Exception):
    """Over a limit: answer 429 with ``Retry-After`` (RFC 9126 2.3, RFC 6585 4)."""

    def __init__(self, retry_after: int, reason: str) -> None:
        super().__init__(reason)
        self.retry_after = max(1, retry_after)
        self.reason = reason


class PushLimits:
    """The windowed push counters, in the IdP's sqlite (``par_counts``)."""

    def __init__(self, db: Database, clock: Clock, settings: ParSettings) -> None:
        self._db = db
        self._clock = clock
        self.settings = settings

    def count_client(self, client_id: str) -> None:
        """An authenticated confidential client's push; PushRefused over its rate."""
        self._take(f"client:{client_id}", self.settings.client_pushes, "this client's")

    def count_address(self, ip: str) -> None:
        """A push that is not a confidential client's; PushRefused over the address's rate."""
        self._take(f"ip:{ip}", self.settings.address_pushes, "this address's")

    def _take(self, key: str, allowed: int, whose: str) -> None:
        now = self._clock.now()
        window = self.settings.window
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM par_counts WHERE at <= ?", (now - window,))
            count, oldest = conn.execute(
                "SELECT count(*), min(at) FROM par_counts WHERE key = ?", (key,)
            ).fetchone()
            if count >= allowed:
                wait = math.ceil(oldest + window - now)
                raise PushRefused(wait, f"Too many pushed requests: {whose} limit per {window} s.")
            conn.execute("INSERT INTO par_counts (key, at) VALUES (?, ?)", (key, now))
