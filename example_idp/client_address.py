"""The caller's address, for every per-address counter of the example IdP (the login throttle,
``/par``, client authentication at ``/token`` and ``/par``, ``/register``) and the outbox's "this
machine only" (decision 195).

It is the middleware's own, ``reg.client_ip(environ)``: the peer, unless the peer is in ``[network]
trusted_proxies``; then the right-most hop of ``forwarded_header`` that is not a trusted proxy
(SECURITY.md cases 1-6). One source, so a counter, the middleware's audit and Conditional Access
name the same address. Flask's ``request.remote_addr`` behind a reverse proxy is the proxy's for
every caller: one stranger filling a counter would refuse everyone. Without the middleware
(``combinedreg_config=None``) there is no ``[network]``, so no proxy is believed: the peer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app, request

if TYPE_CHECKING:
    from .host import Idp

__all__ = ["client_address"]


def client_address() -> str:
    """The current request's client address; ``"unknown"`` when the peer is not an address (a
    Unix socket), one counter for all such callers, as before."""
    idp: Idp = current_app.extensions["example_idp"]
    if idp.registration is not None:
        ip = idp.registration.client_ip(request.environ)
    else:
        ip = request.remote_addr
    return ip or "unknown"
