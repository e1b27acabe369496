"""The security headers of every page, and what a request over https adds (``Secure``, HSTS).

One source for the middleware's pages and for the host's: ``CombinedRegistration.
security_headers(environ)`` gives a host page the same set (example_idp/, examples/).

Whether a request came over https: the WSGI server says so (``wsgi.url_scheme``), or a trusted
reverse proxy that ended TLS says so in ``X-Forwarded-Proto`` (or, where ``[network]
forwarded_header = "forwarded"``, the ``proto=`` of ``Forwarded``, RFC 7239 5.4). Only a peer in
``network.trusted_proxies`` is believed, as for the client address (docs/deploy.md, "TLS").
A spoofed "https" from a client only makes its own cookies ``Secure``; it cannot take them away.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..conditional_access.model import ForwardedHeader, NetworkConfig
from ..config.model import Config, WebConfig
from .branding import content_security_policy

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "PAGE_HEADERS_APPLIED",
    "SecurityHeaders",
    "page_headers",
    "request_is_https",
    "secure_cookie",
    "security_headers",
    "with_https_headers",
]

#: environ key: the middleware's web app answered this request with one of its own pages, its
#: header set (and the https treatment) already applied with this ``WebConfig`` (web/app.py)
PAGE_HEADERS_APPLIED = "combinedreg.page_headers"

# No ``form-action``: Chromium applies it to every redirect after a form submission, and the last
# step of a sign-in (MFA, the wizard's "Done") redirects through /authorize to the relying party's
# own origin. Every form here posts to its own page; CSRF tokens guard the rest.
_PAGE_HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)

_SECURE_ATTR = re.compile(r";\s*secure\s*(;|$)", re.IGNORECASE)
_FORWARDED_PROTO = re.compile(r'(?:^|[;,\s])proto\s*=\s*"?https"?\s*(?:[;,]|$)', re.IGNORECASE)


def page_headers(web: WebConfig, *, https: bool) -> list[tuple[str, str]]:
    """The header set of a page: no caching, no framing (CSP ``frame-ancestors 'none'`` and
    ``X-Frame-Options``), no sniffing, no referrer, the CSP of ``[web.branding]``; over https
    also ``Strict-Transport-Security`` (``web.hsts_max_age``, RFC 6797; never over http, where
    browsers ignore it, 8.1)."""
    headers = [*_PAGE_HEADERS, ("Content-Security-Policy", content_security_policy(web.branding))]
    if https and web.hsts_max_age:
        headers.append(hsts_header(web))
    return headers


def hsts_header(web: WebConfig) -> tuple[str, str]:
    # No includeSubDomains or preload: the middleware cannot know the domain's other hosts.
    return ("Strict-Transport-Security", f"max-age={web.hsts_max_age}")


def request_is_https(environ: Mapping[str, Any], network: NetworkConfig) -> bool:
    """Did the browser reach us over https (directly, or through a trusted TLS proxy)?"""
    if environ.get("wsgi.url_scheme") == "https":
        return True
    if network.forwarded_header is ForwardedHeader.X_FORWARDED_FOR:
        said = str(environ.get("HTTP_X_FORWARDED_PROTO") or "")
        # A chain of proxies may append: https at any hop means the browser's hop may be it.
        claims = bool(said) and "https" in (p.strip().lower() for p in said.split(","))
    else:
        claims = bool(_FORWARDED_PROTO.search(str(environ.get("HTTP_FORWARDED") or "")))
    return claims and _trusted_peer(environ.get("REMOTE_ADDR"), network)


def _trusted_peer(remote_addr: object, network: NetworkConfig) -> bool:
    if not isinstance(remote_addr, str) or not network.trusted_proxies:
        return False
    try:
        peer = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    return any(peer in net for net in network.trusted_proxies)


def secure_cookie(set_cookie: str) -> str:
    """A ``Set-Cookie`` value with the ``Secure`` attribute (RFC 6265 5.2.5), added if missing."""
    return set_cookie if _SECURE_ATTR.search(set_cookie) else set_cookie + "; Secure"


def with_https_headers(headers: Iterable[tuple[str, str]], web: WebConfig) -> list[tuple[str, str]]:
    """For a response to an https request: every cookie ``Secure``, and HSTS if missing."""
    out = [(n, secure_cookie(v)) if n.lower() == "set-cookie" else (n, v) for n, v in headers]
    if web.hsts_max_age and not any(n.lower() == "strict-transport-security" for n, _ in out):
        out.append(hsts_header(web))
    return out


def security_headers(config: Config | None, environ: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The middleware's header set for one of the host's pages (its login form, home, sign-out
    confirmation): what the middleware's own pages send, HSTS included when ``environ`` came
    over https. ``config``: the middleware's (its branding, HSTS age, trusted proxies); None
    for a host running without it (the defaults)."""
    web, network = _parts(config)
    return page_headers(web, https=request_is_https(environ, network))


def _parts(config: Config | None) -> tuple[WebConfig, NetworkConfig]:
    if config is None:
        return WebConfig(), NetworkConfig()
    return config.web, config.conditional_access.network


class SecurityHeaders:
    """WSGI middleware for a host's own pages: each response gets :func:`security_headers`
    (a header the response sets itself is kept), and a response to an https request gets
    ``Secure`` on every cookie and HSTS. Wrap the host app: ``SecurityHeaders(app, config)``."""

    def __init__(
        self, app: WSGIApplication, config: Config | None, *, hsts_max_age: int | None = None
    ) -> None:
        self.app = app
        self.web, self.network = _parts(config)
        if hsts_max_age is not None:  # a host without the middleware's config chooses its own
            self.web = replace(self.web, hsts_max_age=hsts_max_age)
        self._plain = page_headers(self.web, https=False)
        self._https = page_headers(self.web, https=True)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        https = request_is_https(environ, self.network)
        extra = self._https if https else self._plain

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if environ.get(PAGE_HEADERS_APPLIED) is self.web:
                # One of the middleware's pages, made with this very config: every header of
                # ``extra`` is there already, or the page set its own (the same merge).
                return start_response(status, headers, exc_info)
            named = {n.lower() for n, _ in headers}
            headers = [*headers, *((n, v) for n, v in extra if n.lower() not in named)]
            if https:
                headers = with_https_headers(headers, self.web)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)
