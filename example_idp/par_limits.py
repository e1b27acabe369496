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

Wrong client secrets also count on the client authentication's counters, shared with ``/token``
(client_auth.py). Refused requests are not counted, nothing refused is stored, and the counters
are windowed (rate_limits.py): nothing is durable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oidc_combinedreg.clock import Clock

from .db import Database
from .rate_limits import Refused, WindowedCounts, whole_number_settings

__all__ = ["ParSettings", "PushLimits", "PushRefused", "par_settings"]

#: /par's refusals are the shared 429 (the name kept for the modules that catch it)
PushRefused = Refused


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


def par_settings(raw: Any, where: str) -> ParSettings:
    """``[par]`` checked: whole numbers of at least 1, no unknown keys."""
    return whole_number_settings(ParSettings, raw, where)


class PushLimits:
    """The windowed push counters (``par:client:<id>``, ``par:ip:<address>``)."""

    def __init__(self, db: Database, clock: Clock, settings: ParSettings) -> None:
        self._counts = WindowedCounts(db, clock)
        self.settings = settings

    def count_client(self, client_id: str) -> None:
        """An authenticated confidential client's push; PushRefused over its rate."""
        self._take(f"par:client:{client_id}", self.settings.client_pushes, "this client's")

    def count_address(self, ip: str) -> None:
        """A push that is not a confidential client's; PushRefused over the address's rate."""
        self._take(f"par:ip:{ip}", self.settings.address_pushes, "this address's")

    def _take(self, key: str, allowed: int, whose: str) -> None:
        window = self.settings.window
        reason = f"Too many pushed requests: {whose} limit per {window} s."
        self._counts.take(key, allowed, window, reason)
