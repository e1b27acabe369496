"""Failed client authentications at ``/token`` and ``/par``: a client secret is a password (RFC 6749
2.3.1: the server "MUST protect any endpoint utilizing it against brute force attacks"; 10.10).

Two windowed counters of failures (``[client_auth]``, rate_limits.py), read before the secret is
compared (a refused request tells nothing about its guess and spends no code):

* **per address** (``address_failures`` per ``window``), over every client: the address is refused;
  a success never clears it (or a caller could reset its count with a client of its own);
* **per client**, from all addresses (``client_failures`` per ``window``): past it, an address that
  failed *for this client* in the window is refused, an address that did not is not. Guessing
  spread over many addresses is bounded (the limit plus one try per address and window) and the
  real client, which does not fail, is never refused from its own address (decision 190). A
  success clears its address's failures for that client.

Unknown client ids count on the address only: no row per invented id. A request without a secret
(a public client names itself, RFC 6749 2.1) guesses nothing: ``oauth.py`` neither checks nor counts it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from oidc_combinedreg.clock import Clock

from .db import Database
from .rate_limits import Refused, WindowedCounts, whole_number_settings

__all__ = ["ClientAuthLimits", "ClientAuthSettings", "client_auth_settings"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ClientAuthSettings:
    """``[client_auth]`` in idp.toml."""

    #: seconds over which failures are counted
    window: int = 300
    #: failed client authentications from one address (any client) per window
    address_failures: int = 20
    #: failed authentications of one client from all addresses per window; past it, the
    #: addresses that failed for it are refused
    client_failures: int = 100


def client_auth_settings(raw: Any, where: str) -> ClientAuthSettings:
    """``[client_auth]`` checked: whole numbers of at least 1, no unknown keys."""
    return whole_number_settings(ClientAuthSettings, raw, where)


class ClientAuthLimits:
    """Checks and counts client authentications; ``known`` tells a registered client id."""

    def __init__(
        self, db: Database, clock: Clock, settings: ClientAuthSettings,
        known: Callable[[str], bool],
    ) -> None:  # fmt: skip
        self._counts = WindowedCounts(db, clock)
        self._known = known
        self.settings = settings

    def _clients(self, claimed: Iterable[str | None]) -> list[str]:
        return sorted({c for c in claimed if c and self._known(c)})

    @staticmethod
    def _pair(client_id: str, ip: str) -> str:
        # An address holds no "|", so the first one ends it: no client id makes another's key.
        return f"auth:from:{ip}|{client_id}"

    def check(self, claimed: Iterable[str | None], ip: str) -> list[str]:
        """Refused (429) when ``ip`` may not try now for the clients it names. Else the clients
        that failed from ``ip`` in the window (their failures there end at a success)."""
        s = self.settings
        keys = {f"auth:ip:{ip}": (s.address_failures, s.window)}
        for client_id in self._clients(claimed):
            keys[f"auth:client:{client_id}"] = (s.client_failures, s.window)
            keys[self._pair(client_id, ip)] = (1, s.window)  # the newest failure from here
        waits = self._counts.waits(keys)
        wait = waits[f"auth:ip:{ip}"]
        for client_id in self._clients(claimed):
            over = waits[f"auth:client:{client_id}"]
            if over > 0:  # under attack: refused where it failed, until either ends
                wait = max(wait, min(over, waits[self._pair(client_id, ip)]))
        if wait > 0:
            whose = "from this address"
            raise Refused(
                wait, f"Too many failed client authentications {whose} (per {s.window} s)."
            )
        return [c for c in self._clients(claimed) if waits[self._pair(c, ip)] > 0]

    def failed(self, claimed: Iterable[str | None], ip: str) -> None:
        keys = [f"auth:ip:{ip}"]
        for client_id in self._clients(claimed):
            keys += [f"auth:client:{client_id}", self._pair(client_id, ip)]
        self._counts.count(keys, self.settings.window)

    def succeeded(self, client_id: str, ip: str) -> None:
        """Only for a client :meth:`check` named as having failed here (no write otherwise)."""
        self._counts.clear(self._pair(client_id, ip))
