"""Which locations contain an address, in O(log n) of the number of ranges.

Every range becomes an integer interval ``[first, last]``. A sweep over the interval ends splits
them into sorted, disjoint segments, each labelled with the set of location ids covering it
(adjacent segments with the same set are merged). A lookup is then one ``bisect`` per address,
instead of an ``ip in network`` test per range.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from .model import IPAddress, IPNetwork

__all__ = ["EMPTY", "LocationIndex", "normalize_ip"]

EMPTY: frozenset[str] = frozenset()


def normalize_ip(ip: IPAddress) -> IPAddress:
    """IPv4-mapped IPv6 (``::ffff:10.0.0.1``) becomes the IPv4 address; a scope id is dropped."""
    if ip.version == 6:
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return mapped
        if ip.scope_id:
            return type(ip)(int(ip))
    return ip


@dataclass(frozen=True, slots=True)
class _Segments:
    """Disjoint segments of one address family, sorted by ``starts``."""

    starts: list[int]
    ends: list[int]
    labels: list[frozenset[str]]

    def find(self, n: int) -> frozenset[str]:
        i = bisect.bisect_right(self.starts, n) - 1
        if i >= 0 and n <= self.ends[i]:
            return self.labels[i]
        return EMPTY


def _sweep(intervals: list[tuple[int, int, str]]) -> _Segments:
    # events: +id at first, -id just past last; sorted by position
    events: list[tuple[int, int, str]] = []
    for first, last, loc in intervals:
        events.append((first, 1, loc))
        events.append((last + 1, -1, loc))
    events.sort(key=lambda e: e[0])
    active: Counter[str] = Counter()
    interned: dict[frozenset[str], frozenset[str]] = {}
    starts: list[int] = []
    ends: list[int] = []
    labels: list[frozenset[str]] = []
    i = 0
    while i < len(events):
        pos = events[i][0]
        while i < len(events) and events[i][0] == pos:
            _, delta, loc = events[i]
            active[loc] += delta
            if not active[loc]:
                del active[loc]
            i += 1
        if not active or i == len(events):
            continue
        label = frozenset(active)
        last = events[i][0] - 1
        if ends and ends[-1] == pos - 1 and labels[-1] == label:
            ends[-1] = last  # touches the previous segment with the same label: extend it
            continue
        starts.append(pos)
        ends.append(last)
        labels.append(interned.setdefault(label, label))
    return _Segments(starts, ends, labels)


class LocationIndex:
    """Maps an address to the ids of every location whose ranges contain it."""

    __slots__ = ("_v4", "_v6", "size")

    def __init__(self, ranges: Iterable[tuple[str, IPNetwork]]) -> None:
        by_family: dict[int, list[tuple[int, int, str]]] = {4: [], 6: []}
        for loc, net in ranges:
            first = int(net.network_address)
            by_family[net.version].append((first, first + net.num_addresses - 1, loc))
        self._v4 = _sweep(by_family[4])
        self._v6 = _sweep(by_family[6])
        #: number of disjoint segments (after merging)
        self.size = len(self._v4.starts) + len(self._v6.starts)

    def match(self, ip: IPAddress) -> frozenset[str]:
        """The location ids containing ``ip`` (already normalized with :func:`normalize_ip`)."""
        segments = self._v4 if ip.version == 4 else self._v6
        return segments.find(int(ip))

    def __contains__(self, ip: IPAddress) -> bool:
        return bool(self.match(ip))
