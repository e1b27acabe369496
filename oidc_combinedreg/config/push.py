"""The ``[methods.push]`` table: request lifetime, prompt limits, enrollment, the device-facing URL."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from .reader import Reader

__all__ = ["PushConfig", "read_push"]


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


def read_push(r: Reader) -> PushConfig:
    """Read ``[methods.push]``; every key is optional."""
    base = PushConfig()
    cfg = PushConfig(
        request_ttl=r.integer("request_ttl", base.request_ttl, min=30, max=600),
        max_prompts=r.integer("max_prompts", base.max_prompts, min=1, max=50),
        prompt_window=r.integer("prompt_window", base.prompt_window, min=60, max=86400),
        enrollment_ttl=r.integer("enrollment_ttl", base.enrollment_ttl, min=60, max=3600),
        clock_skew=r.integer("clock_skew", base.clock_skew, min=10, max=3600),
        server_url=_read_url(r),
        app_name=r.string("app_name", "").strip(),
        app_url=_read_app_url(r),
        web_app=r.boolean("web_app", base.web_app),
    )
    if cfg.app_url and not cfg.app_name:
        r.error("app_url", "expected app_name too: the page names the app it links to")
    r.done()
    return cfg
