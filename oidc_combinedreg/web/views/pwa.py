"""The authenticator web app (PWA): its shell, manifest and service worker under ``<prefix>/app/``.

Static files from ``web/pwa/``; the app itself talks only to the device API (``web/device_api.py``)
on its own origin, with keys it made with WebCrypto (docs/methods/push.md, "The web app"). These
responses carry no session and set no cookie: the app has no cookie to lose and no form a
cross-site page could post. The CSP is stricter than the pages': no inline script or style, no
frames, Trusted Types, and ``connect-src 'self'``, so even an injected script could send nothing
elsewhere.

``[methods.push] web_app_origin`` gives the app an origin of its own (:class:`AppOrigin`): on that
host name the middleware answers the app and the device API only, nothing of the IdP (no page, no
cookie, not even a 404 from the host); on the IdP's origin the app's address then redirects there.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from werkzeug.wrappers import Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from ..app import WebApp

__all__ = ["APP_CSP", "PATH", "AppOrigin", "app_response", "app_url", "device_base_url"]

#: where the app lives under the middleware's prefix
PATH = "/app/"
_FILES_DIR = Path(__file__).resolve().parents[1] / "pwa"
#: the only files served: a fixed list, no path from the request ever reaches the file system
_FILES = {
    "": "index.html",
    "index.html": "index.html",
    "app.js": "app.js",
    "authcrypto.js": "authcrypto.js",
    "webpush.js": "webpush.js",
    "i18n.js": "i18n.js",
    "app.css": "app.css",
    "sw.js": "sw.js",
    "manifest.webmanifest": "manifest.webmanifest",
    "icon.svg": "icon.svg",
}
_TYPES = {".webmanifest": "application/manifest+json", ".js": "text/javascript"}

#: the strictest policy the app works with (CSP Level 3): its own script, style, images, manifest
#: and worker; fetches only to its own origin (the device API, served there too); no plugins,
#: forms, frames or base changes; DOM sinks take no strings (Trusted Types: the app builds its
#: page with textContent, and its one script URL, the service worker's, goes through the one
#: policy it may create)
APP_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; manifest-src 'self'; worker-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
    "require-trusted-types-for 'script'; trusted-types authenticator"
)
#: the powerful features no page of the app uses, off for it and anything it could embed
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "bluetooth",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "hid",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "serial",
        "usb",
    )
)
#: served at the IdP's ``<prefix>/app/sw.js`` once the app has an origin of its own: a worker
#: installed there by the app before the move replaces itself with this one at its next update
#: check, which drops its caches and unregisters (the shell there would only redirect now)
_RETIRED_WORKER = b"""// The app moved to its own origin: this worker clears what the old one kept and leaves.
"use strict";
self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.registration.unregister(); }));
});
"""


def app_url(server_url: str) -> str:
    """The app's address for a device API base URL (the app and the API share an origin)."""
    return server_url.rstrip("/") + PATH


def device_base_url(web: WebApp) -> str | None:
    """The device API's base URL on the app's own origin (``web_app_origin`` + the prefix), the
    enrollment payload's ``url``; None when the app shares the IdP's origin."""
    origin = web.config.push.web_app_origin
    return origin + web.prefix if origin else None


#: how many ``Host`` values :class:`AppOrigin` remembers its answer for (a deployment sees a few)
_KNOWN_HOSTS = 64


class AppOrigin:
    """Recognizes a request for the app's own origin by its ``Host`` (RFC 9110 7.2; behind a
    reverse proxy that passes it on) and answers it: the app, the device API, nothing else."""

    def __init__(self, origin: str, prefix: str) -> None:
        parts = urlsplit(origin)
        self.origin = origin
        self.hostname = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = prefix
        #: the answer for each ``Host`` value seen, at most ``_KNOWN_HOSTS`` of them: asked at
        #: every request the middleware sees, its host's own pages included, where parsing the
        #: value cost about 7 us (1.068x on benchmarks/passthrough.py's host, decision 228).
        self._known: dict[str, bool] = {}

    def matches(self, environ: WSGIEnvironment) -> bool:
        host = str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "")
        known = self._known.get(host)
        if known is None:
            known = self._matches(host)
            # Full: start over rather than keep the first values for good, so an anonymous
            # client making hosts up cannot take the deployment's own out for the process's
            # life; it makes them parsed again now and then, as every request was before.
            if len(self._known) >= _KNOWN_HOSTS:
                self._known.clear()
            self._known[host] = known
        return known

    def _matches(self, host: str) -> bool:
        try:
            parts = urlsplit("//" + host)
            port = parts.port
        except ValueError:
            return False
        # A Host without a port names the scheme's default one (a TLS proxy passes "app.example").
        return parts.hostname == self.hostname and port in (None, self.port)

    def serve(
        self, web: WebApp, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        below = path[len(self.prefix) :] if path.startswith(self.prefix + "/") else None
        if below is not None and (below == "/app" or below.startswith(PATH)):
            return app_response(web, below, environ, own_origin=True)(environ, start_response)
        if below is not None and below.startswith("/device/"):

            def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                # The device views set no cookie; this origin must never carry one of the IdP's.
                kept = [(n, v) for n, v in headers if n.lower() != "set-cookie"]
                return start_response(status, kept, exc_info)

            return web(environ, start)
        if path in ("", "/"):  # someone typed the app's host name
            response = Response(status=302, headers={"Location": self.prefix + PATH})
        else:  # the IdP's pages, the host's and the middleware's, are not here
            response = Response("not found", status=404, mimetype="text/plain")
        _app_headers(web, response, environ)
        return response(environ, start_response)


def app_response(
    web: WebApp, path: str, environ: WSGIEnvironment, *, own_origin: bool = False
) -> Response:
    """``path`` is below the prefix and starts with ``/app``. ``own_origin``: the request came
    to ``web_app_origin``; with one configured, the IdP's origin only points there."""
    name = _FILES.get(path[len(PATH) :])
    moved = bool(web.config.push.web_app_origin) and not own_origin
    if moved and name in ("index.html", "sw.js") or path == PATH.rstrip("/"):
        if name == "sw.js":
            response = Response(_RETIRED_WORKER, mimetype="text/javascript")
        else:
            # The service worker's scope is the directory: the app's own URL ends with a slash.
            # A browser keeps the fragment (the enrollment payload) across the redirect
            # (RFC 9110 10.2.2), so an old link or home-screen icon still lands on the app.
            base = web.config.push.web_app_origin + web.prefix if moved else web.prefix
            query = environ.get("QUERY_STRING", "")
            location = base + PATH + (f"?{query}" if query else "")
            response = Response(status=308, headers={"Location": location})
        _app_headers(web, response, environ)
        return response
    if moved or name is None or environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
        return Response("not found", status=404, mimetype="text/plain")
    file = _FILES_DIR / name
    suffix = file.suffix
    mime = _TYPES.get(suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    response = Response(file.read_bytes(), mimetype=mime)
    _app_headers(web, response, environ)
    return response


def _app_headers(web: WebApp, response: Response, environ: WSGIEnvironment) -> None:
    headers = response.headers
    headers["Content-Security-Policy"] = APP_CSP
    # Revalidate every time: the service worker keeps the offline copy, and a fixed app must
    # reach phones at their next start, not after an hour.
    headers["Cache-Control"] = "no-cache"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    # The enrollment payload rides in the fragment, which no Referer carries anyway (Fetch,
    # "referrer"; RFC 9110 10.1.3); no-referrer also keeps the app's path from any request
    # it makes, and the app makes none to another origin.
    headers["Referrer-Policy"] = "no-referrer"
    # A page the app opened (or that opened it) gets no handle on its window (HTML, COOP).
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    headers["Permissions-Policy"] = PERMISSIONS_POLICY
    if web.is_https(environ) and web.config.web.hsts_max_age:
        headers["Strict-Transport-Security"] = f"max-age={web.config.web.hsts_max_age}"
