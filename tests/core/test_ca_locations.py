"""The bisect location index agrees with a naive ``ip in network`` scan, edges included."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oidc_combinedreg.conditional_access import LocationIndex, normalize_ip
from oidc_combinedreg.conditional_access.model import IPAddress, IPNetwork

LOCATION_IDS = st.sampled_from(["a", "b", "c", "d"])


def naive(ranges: list[tuple[str, IPNetwork]], ip: IPAddress) -> frozenset[str]:
    return frozenset(loc for loc, net in ranges if ip.version == net.version and ip in net)


@st.composite
def networks(draw: st.DrawFn, version: int) -> IPNetwork:
    bits = 32 if version == 4 else 128
    # small prefixes are rare but must be covered: /0 and everything up to /bits
    prefix = draw(st.one_of(st.integers(0, bits), st.sampled_from([0, 1, bits - 1, bits])))
    address = draw(st.integers(0, 2**bits - 1))
    return ipaddress.ip_network((address, prefix), strict=False)


@st.composite
def range_lists(draw: st.DrawFn) -> list[tuple[str, IPNetwork]]:
    nets = st.one_of(networks(4), networks(6))
    return draw(st.lists(st.tuples(LOCATION_IDS, nets), max_size=30))


def probes(ranges: list[tuple[str, IPNetwork]]) -> list[IPAddress]:
    """Every range edge and its neighbours: where an off-by-one would show."""
    out: list[IPAddress] = []
    for _, net in ranges:
        first, last = int(net.network_address), int(net.broadcast_address)
        top = 2**net.max_prefixlen - 1
        for n in (first - 1, first, first + 1, last - 1, last, last + 1):
            if 0 <= n <= top:
                out.append(
                    ipaddress.ip_address(n) if net.version == 4 else ipaddress.IPv6Address(n)
                )
    return out


@settings(max_examples=300)
@given(ranges=range_lists(), extra=st.lists(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6))))
def test_index_agrees_with_naive_scan(
    ranges: list[tuple[str, IPNetwork]], extra: list[IPAddress]
) -> None:
    index = LocationIndex(ranges)
    for ip in probes(ranges) + extra:
        assert index.match(ip) == naive(ranges, ip), ip


def net(text: str) -> IPNetwork:
    return ipaddress.ip_network(text)


@pytest.mark.parametrize(
    ("ranges", "address", "expected"),
    [
        pytest.param(
            [("a", net("10.0.0.0/8"))], "10.0.0.0", {"a"}, id="first address of a range matches"
        ),
        pytest.param(
            [("a", net("10.0.0.0/8"))], "10.255.255.255", {"a"}, id="last address matches"
        ),
        pytest.param([("a", net("10.0.0.0/8"))], "9.255.255.255", set(), id="one below does not"),
        pytest.param([("a", net("10.0.0.0/8"))], "11.0.0.0", set(), id="one above does not"),
        pytest.param([("a", net("0.0.0.0/0"))], "255.255.255.255", {"a"}, id="ipv4 /0 covers all"),
        pytest.param([("a", net("::/0"))], "ffff::1", {"a"}, id="ipv6 /0 covers all ipv6"),
        pytest.param([("a", net("::/0"))], "1.2.3.4", set(), id="ipv6 /0 does not cover ipv4"),
        pytest.param([("a", net("192.0.2.7/32"))], "192.0.2.7", {"a"}, id="a /32 matches itself"),
        pytest.param(
            [("a", net("192.0.2.7/32"))], "192.0.2.8", set(), id="a /32 matches only itself"
        ),
        pytest.param(
            [("a", net("2001:db8::1/128"))], "2001:db8::1", {"a"}, id="a /128 matches itself"
        ),
        pytest.param(
            [("a", net("10.0.0.0/8")), ("b", net("10.1.0.0/16"))],
            "10.1.2.3",
            {"a", "b"},
            id="overlapping ranges of two locations both match",
        ),
        pytest.param(
            [("a", net("10.0.0.0/9")), ("a", net("10.128.0.0/9"))],
            "10.128.0.0",
            {"a"},
            id="adjacent ranges of one location merge",
        ),
        pytest.param(
            [("a", net("::1/128"))], "::ffff:127.0.0.1", set(), id="mapped is not ipv6 ::1"
        ),
    ],
)
def test_index_edges(ranges: list[tuple[str, IPNetwork]], address: str, expected: set[str]) -> None:
    assert LocationIndex(ranges).match(ipaddress.ip_address(address)) == expected


def test_adjacent_ranges_of_one_location_become_one_segment() -> None:
    index = LocationIndex([("a", net("10.0.0.0/9")), ("a", net("10.128.0.0/9"))])
    assert index.size == 1


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        pytest.param("::ffff:10.0.0.1", "10.0.0.1", id="ipv4-mapped ipv6 becomes ipv4"),
        pytest.param("fe80::1%eth0", "fe80::1", id="a zone id is dropped"),
        pytest.param("2001:db8::1", "2001:db8::1", id="plain ipv6 is unchanged"),
        pytest.param("10.0.0.1", "10.0.0.1", id="ipv4 is unchanged"),
    ],
)
def test_normalize_ip(address: str, expected: str) -> None:
    assert normalize_ip(ipaddress.ip_address(address)) == ipaddress.ip_address(expected)
