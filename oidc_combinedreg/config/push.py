"""The ``[methods.push]`` table: request lifetime, prompt limits, enrollment, the device-facing URL."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..exceptions import ConfigProblem
from .reader import Reader
from .web_push import WebPushConfig, read_web_push

__all__ = ["PushConfig", "read_push", "web_app_origin_problems"]


@dataclass(frozen=True, kw_only=True, slots=True)
class PushConfig:
    #: seconds a sign-in approval request stays answerable (the device must answer within it)
    request_ttl: int = 120
    #: prompts a user may have sent since their last approved one before more are refused
    #: (push bombing, OWASP ASVS 5.0 6.6.4); the count also expires after ``prompt_window``
    max_prompts: int = 5
    #: seconds after which the prompt count starts again even without a success
    prompt_window: int = 3600
    #: seconds a QR code (its one-time enrollment token) stays usable
    enrollment_ttl: int = 600
    #: accepted difference between the device's and the server's clock for signed polls
    clock_skew: int = 300
    #: base URL the device talks to, e.g. ``https://idp.example.com/security-info``;
    #: "" = derived from the enrolling browser's request (fine without a reverse proxy)
    server_url: str = ""
    #: the push app users install (shown on the registration page). Empty (the default): no app
    #: is offered, so neither the wizard nor "Add sign-in method" proposes push registration;
    #: devices already registered keep working
    app_name: str = ""
    #: where users get that app (a store page or the organization's download page), optional
    app_url: str = ""
    #: offer the built-in authenticator web app (served at ``<prefix>/app/``): the QR code is
    #: then a link to it; push is offered even without ``app_name``
    web_app: bool = False
    #: the app's own origin (``https://authenticator.example.com``), a host name the host maps to
    #: the same WSGI app: the app and the device API are then served there only, and the IdP's
    #: pages, cookies and script never share the app's origin (docs/methods/push.md, "Security of
    #: the web app"). "" = served under the IdP's origin at ``<prefix>/app/``
    web_app_origin: str = ""
    #: ``[methods.push.web_push]``: Web Push notifications to the web app; None = off (the app
    #: polls while it is open)
    web_push: WebPushConfig | None = None

    @property
    def offered(self) -> bool:
        """Can users register a push device here? Only when the deployment names an app or
        serves the built-in web app."""
        return bool(self.app_name) or self.web_app


def _read_app_url(r: Reader) -> str:
    # A store page may carry a query (?id=...), unlike the device-facing base URL.
    url = r.string("app_url", "").strip()
    parts = urlsplit(url)
    if url and (parts.scheme not in ("https", "http") or not parts.hostname):
        r.error("app_url", f"expected an http(s) URL, got {url!r}")
    return url


def _read_url(r: Reader) -> str:
    key = "server_url"
    url = r.string(key, "").rstrip("/")
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query:
        r.error(key, f"expected an http(s) URL without a query, got {url!r}")
    return url


#: hosts a browser treats as a secure context over plain http (W3C Secure Contexts 3.1)
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _read_origin(r: Reader) -> str:
    """An RFC 6454 origin, ``scheme://host[:port]``, lower-cased, without its scheme's default
    port (as a browser's ``Origin`` header spells it); https, or http on a loopback host."""
    key = "web_app_origin"
    value = r.string(key, "").strip()
    if not value:
        return ""
    expected = "expected an origin such as 'https://authenticator.example.com'"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        r.error(key, f"{expected}, got {value!r}")
        return ""
    host = (parts.hostname or "").lower()
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        r.error(key, f"{expected} (no path, query or user), got {value!r}")
        return ""
    local = host in _LOOPBACK or host.endswith(".localhost")
    if not host or not (parts.scheme == "https" or (parts.scheme == "http" and local)):
        r.error(
            key, f"{expected}: https (http only for localhost or a loopback address), got {value!r}"
        )
        return ""
    default = 443 if parts.scheme == "https" else 80
    name = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{name}" + (f":{port}" if port not in (None, default) else "")


def read_push(r: Reader, base_dir: Path = Path(".")) -> PushConfig:
    """Read ``[methods.push]``; every key is optional."""
    base = PushConfig()
    request_ttl = r.integer("request_ttl", base.request_ttl, min=30, max=600)
    web_app = r.boolean("web_app", base.web_app)
    cfg = PushConfig(
        request_ttl=request_ttl,
        max_prompts=r.integer("max_prompts", base.max_prompts, min=1, max=50),
        prompt_window=r.integer("prompt_window", base.prompt_window, min=60, max=86400),
        enrollment_ttl=r.integer("enrollment_ttl", base.enrollment_ttl, min=60, max=3600),
        clock_skew=r.integer("clock_skew", base.clock_skew, min=10, max=3600),
        server_url=_read_url(r),
        app_name=r.string("app_name", "").strip(),
        app_url=_read_app_url(r),
        web_app=web_app,
        web_app_origin=_read_origin(r),
        web_push=(
            read_web_push(r.section("web_push"), base_dir, request_ttl=request_ttl, web_app=web_app)
            if r.has("web_push")
            else None
        ),
    )
    if cfg.app_url and not cfg.app_name:
        r.error("app_url", "expected app_name too: the page names the app it links to")
    if cfg.web_app_origin and not cfg.web_app:
        r.error("web_app_origin", "expected web_app = true too: it is where the web app is served")
    if cfg.web_app_origin and cfg.server_url:
        # One enrollment payload, one base URL: with its own origin the app's devices talk to
        # that origin (web_app_origin + the prefix); a second URL could only contradict it.
        r.error(
            "web_app_origin",
            "expected no server_url with it: the devices then talk to the app's origin",
        )
    r.done()
    return cfg


def web_app_origin_problems(
    origin: str, *, production: bool, idp_origins: tuple[str, ...]
) -> list[ConfigProblem]:
    """What ``web_app_origin`` must not be, seen against the rest of the file: plain http in
    production, or an origin of the IdP itself (``idp_origins``: its WebAuthn origins). The same
    host name on another port is a different origin (RFC 6454 4) with the same cookies
    (RFC 6265 8.5): a warning."""
    path = "methods.push.web_app_origin"
    if not origin:
        return []
    if production and origin.startswith("http:"):
        return [
            ConfigProblem(path, "expected an https origin when general.environment is 'production'")
        ]
    host = urlsplit(origin).hostname
    for i, idp in enumerate(idp_origins):
        if idp.rstrip("/").lower() == origin:
            where = f"methods.webauthn.origins[{i}]"
            return [ConfigProblem(path, f"expected an origin of its own, not the IdP's ({where})")]
        if urlsplit(idp).hostname == host:
            return [
                ConfigProblem(
                    path,
                    f"shares its host name with methods.webauthn.origins[{i}] ({idp!r}): another "
                    "port is another origin, but browsers send the IdP's cookies to it "
                    "(RFC 6265 8.5); use a host name of its own",
                    severity="warning",
                )
            ]
    return []
