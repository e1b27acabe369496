"""The client address, believing forwarded headers only from configured trusted proxies.

Rules (SECURITY.md cases 1-6; the reasons are in docs/conditional-access.md):

1. The peer (``REMOTE_ADDR``) is the client unless it is a trusted proxy; then, and only then,
   the one configured header (``X-Forwarded-For`` or ``Forwarded``) is read. The other is ignored.
2. Several lines of that header are joined in order. Every entry must parse, or the header is
   malformed: the result is the peer address with ``malformed=True`` (callers must fail closed:
   :class:`~.engine.Engine` blocks such a context).
3. The header is walked from the right, skipping trusted proxies; the first other address is the
   client. If every hop is a trusted proxy, the peer is used, never the left-most entry (which the
   client may have written).
4. IPv4-mapped IPv6 addresses are normalized to IPv4 everywhere.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from .locations import LocationIndex, normalize_ip
from .model import ForwardedHeader, IPAddress, NetworkConfig

__all__ = ["ClientIp", "ClientIpResolver", "IpSource", "resolve_client_ip"]

#: longer headers are refused outright (a real chain is a few dozen bytes per hop)
MAX_HEADER_CHARS = 4096
MAX_HOPS = 32

_PLAIN = re.compile(r"[0-9A-Fa-f.:]+")
# RFC 7239 node: IPv4 (unquoted or quoted, optional port when quoted) or "[IPv6]" with optional port
_FORWARDED_NODE = re.compile(
    r'"\[([0-9A-Fa-f.:]+)\](?::\d{1,5})?"|"([0-9.]+)(?::\d{1,5})?"|([0-9.]+)'
)

HeaderValues = str | Sequence[str] | None


class IpSource(StrEnum):
    REMOTE_ADDR = "remote-addr"
    X_FORWARDED_FOR = "x-forwarded-for"
    FORWARDED = "forwarded"


@dataclass(frozen=True, kw_only=True, slots=True)
class ClientIp:
    #: the client address, or ``None`` when even ``REMOTE_ADDR`` is not an address
    ip: IPAddress | None
    #: the configured header (from a trusted proxy) could not be read: log it and fail closed
    malformed: bool = False
    source: IpSource = IpSource.REMOTE_ADDR


def _address(text: str) -> IPAddress | None:
    try:
        return normalize_ip(ipaddress.ip_address(text))
    except ValueError:
        return None


def _plain_hop(entry: str) -> IPAddress | None:
    # no brackets, ports, zone ids or names: exactly an address, as proxies append it
    entry = entry.strip(" \t")
    return _address(entry) if _PLAIN.fullmatch(entry) else None


def _forwarded_hop(element: str) -> IPAddress | None:
    fors = []
    for pair in element.split(";"):
        name, eq, value = pair.strip(" \t").partition("=")
        if not eq:
            return None
        if name.lower() == "for":
            fors.append(value)
    if len(fors) != 1:
        return None  # no for= (or two): we cannot tell who this hop is
    node = _FORWARDED_NODE.fullmatch(fors[0])
    if node is None:
        return None  # "unknown", obfuscated identifiers, junk
    return _address(next(g for g in node.groups() if g is not None))


def _join(values: HeaderValues) -> str | None:
    if values is None:
        return None
    if isinstance(values, str):
        return values
    return ",".join(values) if values else None


def parse_hops(header: str, kind: ForwardedHeader) -> list[IPAddress] | None:
    """Every hop of a (joined) header, left to right; ``None`` if any entry is malformed."""
    if len(header) > MAX_HEADER_CHARS:
        return None
    parse = _plain_hop if kind is ForwardedHeader.X_FORWARDED_FOR else _forwarded_hop
    entries = header.split(",")
    if len(entries) > MAX_HOPS:
        return None
    hops = [parse(e) for e in entries]
    if any(h is None for h in hops):
        return None
    return [h for h in hops if h is not None]


class ClientIpResolver:
    """Built once from ``[network]``; :meth:`resolve` is called per request."""

    __slots__ = ("_cache", "_header", "_proxies", "_source")

    def __init__(self, network: NetworkConfig) -> None:
        self._proxies = LocationIndex(("proxy", n) for n in network.trusted_proxies)
        self._header = network.forwarded_header
        self._source = IpSource(network.forwarded_header.value)
        #: answers by (REMOTE_ADDR, headers): a client sends many requests from one address,
        #: and parsing addresses was a twentieth of an MFA verify's CPU
        self._cache: dict[tuple[str | None, str | None, str | None], ClientIp] = {}

    def resolve(
        self,
        remote_addr: str | None,
        *,
        x_forwarded_for: HeaderValues = None,
        forwarded: HeaderValues = None,
    ) -> ClientIp:
        if not isinstance(x_forwarded_for, str | None) or not isinstance(forwarded, str | None):
            return self._resolve(remote_addr, x_forwarded_for, forwarded)  # several header lines
        key = (remote_addr, x_forwarded_for, forwarded)
        found = self._cache.get(key)
        if found is None:
            found = self._resolve(remote_addr, x_forwarded_for, forwarded)
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()  # bounded: headers are the client's to vary
            self._cache[key] = found
        return found

    def _resolve(
        self, remote_addr: str | None, x_forwarded_for: HeaderValues, forwarded: HeaderValues
    ) -> ClientIp:
        peer = _address(remote_addr) if remote_addr else None
        if peer is None:
            return ClientIp(ip=None, malformed=True)
        if peer not in self._proxies:
            return ClientIp(ip=peer)  # case 1: a header from an untrusted peer means nothing
        configured = (
            x_forwarded_for if self._header is ForwardedHeader.X_FORWARDED_FOR else forwarded
        )
        header = _join(configured)
        if header is None:
            return ClientIp(ip=peer)
        hops = parse_hops(header, self._header)
        if hops is None:
            return ClientIp(ip=peer, malformed=True)
        for hop in reversed(hops):
            if hop not in self._proxies:
                return ClientIp(ip=hop, source=self._source)
        return ClientIp(ip=peer)  # case 6: all hops are proxies; never trust the left-most entry


_CACHE_SIZE = 4096


@functools.lru_cache(maxsize=16)
def _resolver(network: NetworkConfig) -> ClientIpResolver:
    return ClientIpResolver(network)


def resolve_client_ip(
    remote_addr: str | None,
    network: NetworkConfig,
    *,
    x_forwarded_for: HeaderValues = None,
    forwarded: HeaderValues = None,
) -> ClientIp:
    """The client address for one request.

    ``x_forwarded_for`` and ``forwarded`` are the raw header values (one string, or one string per
    header line, in order, or ``None`` when absent); only ``network.forwarded_header`` is read.
    """
    return _resolver(network).resolve(
        remote_addr, x_forwarded_for=x_forwarded_for, forwarded=forwarded
    )
