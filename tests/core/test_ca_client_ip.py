"""Client IP through trusted proxies: SECURITY.md cases 1-6 and 9, as a table."""

from __future__ import annotations

import ipaddress
import tomllib
from typing import Any

import pytest

from oidc_combinedreg.conditional_access import (
    REGISTER_SECURITY_INFO,
    ClientIp,
    Engine,
    ForwardedHeader,
    IpSource,
    NetworkConfig,
    Outcome,
    SignInContext,
    parse_conditional_access,
    parse_network,
    resolve_client_ip,
)
from oidc_combinedreg.conditional_access import client_ip as client_ip_module
from oidc_combinedreg.exceptions import ConfigError

XFF = NetworkConfig(
    trusted_proxies=tuple(parse_network(n) for n in ("10.0.0.1", "10.0.0.2", "fd00::/8")),
)
FWD = NetworkConfig(trusted_proxies=XFF.trusted_proxies, forwarded_header=ForwardedHeader.FORWARDED)
CLIENT = "203.0.113.9"
JUNK_10KB = "x" * 10_240


def remote(ip: str) -> ClientIp:
    return ClientIp(ip=ipaddress.ip_address(ip), source=IpSource.REMOTE_ADDR)


def header(ip: str, source: IpSource = IpSource.X_FORWARDED_FOR) -> ClientIp:
    return ClientIp(ip=ipaddress.ip_address(ip), source=source)


def malformed(peer: str = "10.0.0.1") -> ClientIp:
    return ClientIp(ip=ipaddress.ip_address(peer), malformed=True, source=IpSource.REMOTE_ADDR)


@pytest.mark.parametrize(
    ("network", "peer", "headers", "expected"),
    [
        # case 1
        pytest.param(
            XFF,
            CLIENT,
            {"x_forwarded_for": "127.0.0.1"},
            remote(CLIENT),
            id="1: no proxy, spoofed xff -> only REMOTE_ADDR counts",
        ),
        pytest.param(
            XFF,
            CLIENT,
            {"x_forwarded_for": "junk"},
            remote(CLIENT),
            id="1: junk from an untrusted peer is ignored, not malformed",
        ),
        # case 2
        pytest.param(
            XFF,
            "10.0.0.1",
            {"x_forwarded_for": f"127.0.0.1, {CLIENT}"},
            header(CLIENT),
            id="2: client prepends a trusted ip -> the hop the proxy appended",
        ),
        pytest.param(
            XFF,
            "10.0.0.2",
            {"x_forwarded_for": f"127.0.0.1, {CLIENT}, 10.0.0.1"},
            header(CLIENT),
            id="2: two proxies -> right-most hop that is not a proxy",
        ),
        # case 3
        pytest.param(XFF, "10.0.0.1", {"x_forwarded_for": "a"}, malformed(), id="3: 'a'"),
        pytest.param(
            XFF, "10.0.0.1", {"x_forwarded_for": "unknown"}, malformed(), id="3: 'unknown'"
        ),
        pytest.param(XFF, "10.0.0.1", {"x_forwarded_for": ""}, malformed(), id="3: empty value"),
        pytest.param(
            XFF,
            "10.0.0.1",
            {"x_forwarded_for": f"{CLIENT},"},
            malformed(),
            id="3: an empty entry after a comma",
        ),
        pytest.param(
            XFF,
            "10.0.0.1",
            {"x_forwarded_for": "1.2.3.4:443"},
            malformed(),
            id="3: an address with a port",
        ),
        pytest.param(
            XFF, "10.0.0.1", {"x_forwarded_for": "[::1]"}, malformed(), id="3: a bracketed ipv6"
        ),
        pytest.param(
            XFF, "10.0.0.1", {"x_forwarded_for": JUNK_10KB}, malformed(), id="3: 10 KB of junk"
        ),
        pytest.param(
            XFF,
            "10.0.0.1",
            {"x_forwarded_for": ",".join([CLIENT] * 40)},
            malformed(),
            id="3: more hops than any real chain",
        ),
        pytest.param(
            XFF,
            "10.0.0.1",
            {"x_forwarded_for": f"unknown, {CLIENT}"},
            malformed(),
            id="3: junk left of a good hop still fails closed",
        ),
        pytest.param(
            XFF, "10.0.0.1", {"x_forwarded_for": "127.1"}, malformed(), id="3: a shorthand ipv4"
        ),
        pytest.param(
            XFF, "10.0.0.1", {"x_forwarded_for": "127.000.0.1"}, malformed(), id="3: leading zeros"
        ),
        pytest.param(
            XFF, "10.0.0.1", {"x_forwarded_for": "fe80::1%eth0"}, malformed(), id="3: a zone id"
        ),
        pytest.param(
            XFF,
            "10.0.0.1",
            {"x_forwarded_for": "1.2.3.4 5.6.7.8"},
            malformed(),
            id="3: two addresses without a comma",
        ),
        # case 4
        pytest.param(
            XFF,
            "10.0.0.1",
            {"x_forwarded_for": ["127.0.0.1", CLIENT]},
            header(CLIENT),
            id="4: two xff lines are joined in order",
        ),
        pytest.param(
            XFF,
            "10.0.0.1",
            {"x_forwarded_for": [CLIENT, "unknown"]},
            malformed(),
            id="4: a bad second line fails closed",
        ),
        pytest.param(
            XFF,
            "10.0.0.1",
            {"x_forwarded_for": CLIENT, "forwarded": "for=127.0.0.1"},
            header(CLIENT),
            id="4: xff configured, a disagreeing Forwarded is ignored",
        ),
        pytest.param(
            FWD,
            "10.0.0.1",
            {"x_forwarded_for": "127.0.0.1", "forwarded": f"for={CLIENT}"},
            header(CLIENT, IpSource.FORWARDED),
            id="4: Forwarded configured, a disagreeing xff is ignored",
        ),
        pytest.param(
            FWD,
            "10.0.0.1",
            {"x_forwarded_for": CLIENT},
            remote("10.0.0.1"),
            id="4: only the unconfigured header present -> the peer",
        ),
        # case 5
        pytest.param(
            XFF,
            "::ffff:10.0.0.1",
            {"x_forwarded_for": CLIENT},
            header(CLIENT),
            id="5: an ipv4-mapped peer is the ipv4 proxy",
        ),
        pytest.param(
            XFF,
            "10.0.0.1",
            {"x_forwarded_for": "::ffff:203.0.113.9"},
            header(CLIENT),
            id="5: an ipv4-mapped hop becomes ipv4",
        ),
        pytest.param(
            XFF,
            "::ffff:203.0.113.9",
            {},
            remote(CLIENT),
            id="5: an ipv4-mapped client peer becomes ipv4",
        ),
        pytest.param(
            XFF,
            "fd00::",
            {"x_forwarded_for": "2001:db8::5"},
            header("2001:db8::5"),
            id="5: first address of an ipv6 proxy range is a proxy",
        ),
        pytest.param(
            XFF,
            "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            {"x_forwarded_for": "2001:db8::5, fd12::1"},
            header("2001:db8::5"),
            id="5: last address of the proxy range is a proxy",
        ),
        pytest.param(
            XFF,
            "fe00::",
            {"x_forwarded_for": CLIENT},
            remote("fe00::"),
            id="5: one past the proxy range is not a proxy",
        ),
        # case 6
        pytest.param(
            XFF,
            "10.0.0.1",
            {"x_forwarded_for": "10.0.0.2"},
            remote("10.0.0.1"),
            id="6: every hop a proxy -> the peer",
        ),
        pytest.param(
            XFF,
            "10.0.0.1",
            {"x_forwarded_for": "fd00::1, 10.0.0.2"},
            remote("10.0.0.1"),
            id="6: never the left-most entry",
        ),
        pytest.param(
            XFF, "10.0.0.1", {}, remote("10.0.0.1"), id="6: a proxy that sent no header -> the peer"
        ),
        # the peer itself
        pytest.param(XFF, "", {}, ClientIp(ip=None, malformed=True), id="no REMOTE_ADDR"),
        pytest.param(
            XFF, "1.2.3.4:80", {}, ClientIp(ip=None, malformed=True), id="REMOTE_ADDR with a port"
        ),
        # Forwarded (RFC 7239)
        pytest.param(
            FWD,
            "10.0.0.1",
            {"forwarded": 'for="[2001:db8::5]:4711"'},
            header("2001:db8::5", IpSource.FORWARDED),
            id="forwarded: quoted ipv6, port",
        ),
        pytest.param(
            FWD,
            "10.0.0.1",
            {"forwarded": f'for=127.0.0.1;proto=https, For="{CLIENT}:443";by=10.0.0.1'},
            header(CLIENT, IpSource.FORWARDED),
            id="forwarded: two elements, params",
        ),
        pytest.param(
            FWD, "10.0.0.1", {"forwarded": "for=unknown"}, malformed(), id="forwarded: unknown"
        ),
        pytest.param(
            FWD,
            "10.0.0.1",
            {"forwarded": "for=_hidden"},
            malformed(),
            id="forwarded: an obfuscated node",
        ),
        pytest.param(
            FWD,
            "10.0.0.1",
            {"forwarded": "proto=https"},
            malformed(),
            id="forwarded: an element without for",
        ),
        pytest.param(
            FWD, "10.0.0.1", {"forwarded": "for=[::1]"}, malformed(), id="forwarded: unquoted ipv6"
        ),
        pytest.param(
            FWD,
            "10.0.0.1",
            {"forwarded": f"for={CLIENT}:443"},
            malformed(),
            id="forwarded: unquoted port",
        ),
        pytest.param(
            FWD,
            "10.0.0.1",
            {"forwarded": f"for={CLIENT};for=127.0.0.1"},
            malformed(),
            id="forwarded: two for in one element",
        ),
    ],
)
def test_client_ip(
    network: NetworkConfig, peer: str, headers: dict[str, Any], expected: ClientIp
) -> None:
    assert resolve_client_ip(peer, network, **headers) == expected
    assert resolve_client_ip(peer, network, **headers) == expected, "and again, from the cache"


def test_the_answer_cache_stays_bounded_whatever_headers_clients_send() -> None:
    for n in range(client_ip_module._CACHE_SIZE + 100):
        got = resolve_client_ip("10.0.0.1", XFF, x_forwarded_for=f"198.51.{n // 256}.{n % 256}")
        assert got == header(f"198.51.{n // 256}.{n % 256}")
    assert len(client_ip_module._resolver(XFF)._cache) <= client_ip_module._CACHE_SIZE


SEED = parse_conditional_access(
    {
        "named_locations": [
            {"name": "loopback", "ranges": ["127.0.0.0/8", "::1/128"], "trusted": True}
        ],
        "conditional_access": [
            {
                "name": "seed",
                "state": "on",
                "assignments": {"include_users": ["all"], "exclude_groups": ["break-glass"]},
                "target": {"user_action": "register-security-information"},
                "conditions": {"locations": {"include": ["any"], "exclude": ["all-trusted"]}},
                "grant": {"block": True},
            }
        ],
        # a proxy on loopback: falling back to its address would be inside the trusted location
        "network": {"trusted_proxies": ["127.0.0.1"]},
    }
)


def register(peer: str, xff: str | None) -> Outcome:
    ip = resolve_client_ip(peer, SEED.network, x_forwarded_for=xff)
    ctx = SignInContext(
        user_id="alice",
        client_ip=ip.ip,
        client_ip_malformed=ip.malformed,
        target=REGISTER_SECURITY_INFO,
    )
    return Engine(SEED).evaluate(ctx).outcome


@pytest.mark.parametrize(
    ("peer", "xff", "outcome"),
    [
        pytest.param(CLIENT, "127.0.0.1", Outcome.BLOCK, id="1: spoofed xff without proxy -> deny"),
        pytest.param(
            "127.0.0.1",
            f"127.0.0.2, {CLIENT}",
            Outcome.BLOCK,
            id="2: prepended trusted ip behind the proxy -> deny",
        ),
        pytest.param(
            "127.0.0.1",
            "unknown",
            Outcome.BLOCK,
            id="3: malformed header from a loopback proxy -> deny, not the proxy's ip",
        ),
        pytest.param("127.0.0.1", JUNK_10KB, Outcome.BLOCK, id="3: 10 KB of junk -> deny"),
        pytest.param(
            "127.0.0.1",
            "127.0.0.5",
            Outcome.ALLOW,
            id="a genuine loopback client behind the proxy -> allow",
        ),
        pytest.param(
            "127.0.0.1",
            "::ffff:127.0.0.5",
            Outcome.ALLOW,
            id="5: ipv4-mapped loopback client -> allow",
        ),
        pytest.param("127.0.0.1", None, Outcome.ALLOW, id="the proxy itself, no header -> allow"),
    ],
)
def test_client_ip_through_the_engine(peer: str, xff: str | None, outcome: Outcome) -> None:
    assert register(peer, xff) is outcome


# case 9: config missing or unreadable, or empty allowlist


def test_9_unreadable_config_never_makes_an_engine() -> None:
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads("[[conditional_access]\nname = ")
    with pytest.raises(ConfigError):
        parse_conditional_access({"conditional_access": "block everyone"})


def test_9_empty_allowlist_denies() -> None:
    config = parse_conditional_access(
        {
            "named_locations": [{"name": "loopback", "ranges": [], "trusted": True}],
            "conditional_access": [
                {
                    "name": "seed",
                    "state": "on",
                    "assignments": {"include_users": ["all"]},
                    "target": {"user_action": "register-security-information"},
                    "conditions": {"locations": {"exclude": ["all-trusted"]}},
                    "grant": {"block": True},
                }
            ],
        }
    )
    ctx = SignInContext(user_id="alice", client_ip="127.0.0.1", target=REGISTER_SECURITY_INFO)
    assert Engine(config).evaluate(ctx).outcome is Outcome.BLOCK


def test_9_a_missing_conditional_access_section_means_no_policies() -> None:
    # Entra semantics, chosen in the issue: no policies -> nothing to enforce (docs explain why)
    ctx = SignInContext(user_id="alice", client_ip=CLIENT, target=REGISTER_SECURITY_INFO)
    decision = Engine(parse_conditional_access({})).evaluate(ctx)
    assert (decision.outcome, decision.reason) == (Outcome.ALLOW, "no conditional access policies")
