"""Limits of open client registration (``/register``, RFC 7591, OIDC Dynamic Client Registration):
each registration stores a client for good, so an anonymous caller could grow the clients table
without end. ``[registration]`` in idp.toml (decision 191):

* **per address**: ``address_registrations`` stored registrations per ``window`` (429 with
  ``Retry-After`` beyond, rate_limits.py); a refused or invalid registration is not counted;
* **in total**: at most ``max_clients`` registered clients (the clients listed in idp.toml are not
  in the table and never refused); a full table answers as a closed registration does
  (``access_denied``, RFC 7591 3.2.2's 400 and JSON) until an operator removes clients;
* ``open = false`` closes registration (the Basic OP profile of the OpenID tests needs it open,
  which is why the demo keeps it open, with these limits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oidc_combinedreg.clock import Clock

from .db import Database
from .rate_limits import WindowedCounts, whole_number_settings

__all__ = ["RegistrationLimits", "RegistrationSettings", "registration_settings"]


@dataclass(frozen=True, kw_only=True, slots=True)
class RegistrationSettings:
    """``[registration]`` in idp.toml."""

    #: anyone may register a client at /register (what the OpenID Basic OP profile tests)
    open: bool = True
    #: seconds over which an address's registrations are counted
    window: int = 3600
    #: registrations stored per window from one address
    address_registrations: int = 100
    #: registered clients in all (the table's rows; the listed clients are not among them)
    max_clients: int = 10000


def registration_settings(raw: Any, where: str) -> RegistrationSettings:
    """``[registration]`` checked: ``open`` a boolean, whole numbers of at least 1."""
    return whole_number_settings(RegistrationSettings, raw, where, open=bool)


class RegistrationLimits:
    def __init__(self, db: Database, clock: Clock, settings: RegistrationSettings) -> None:
        self._counts = WindowedCounts(db, clock)
        self.settings = settings

    def count_address(self, ip: str) -> None:
        """A registration about to be stored; Refused over the address's rate."""
        window = self.settings.window
        reason = f"Too many client registrations from this address: the limit is per {window} s."
        self._counts.take(f"register:ip:{ip}", self.settings.address_registrations, window, reason)
