"""The authenticator web app (PWA): its shell, manifest and service worker under ``<prefix>/app/``.

Static files from ``web/pwa/``; the app itself talks only to the device API (``web/device_api.py``)
on the same origin, with keys it made with WebCrypto (docs/methods/push.md, "The web app"). These
responses carry no session and set no cookie: the app has no cookie to lose and no form a
cross-site page could post. The CSP is stricter than the pages': no inline script or style, no
frames, and ``connect-src 'self'``, so even an injected script could send nothing elsewhere.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING

from werkzeug.wrappers import Response

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from ..app import WebApp

__all__ = ["APP_CSP", "PATH", "app_response", "app_url"]

#: where the app lives under the middleware's prefix
PATH = "/app/"
_FILES_DIR = Path(__file__).resolve().parents[1] / "pwa"
#: the only files served: a fixed list, no path from the request ever reaches the file system
_FILES = {
    "": "index.html",
    "index.html": "index.html",
    "app.js": "app.js",
    "authcrypto.js": "authcrypto.js",
    "i18n.js": "i18n.js",
    "app.css": "app.css",
    "sw.js": "sw.js",
    "manifest.webmanifest": "manifest.webmanifest",
    "icon.svg": "icon.svg",
}
_TYPES = {".webmanifest": "application/manifest+json", ".js": "text/javascript"}

#: the strictest policy the app works with: its own script, style, images, manifest and worker;
#: fetches only to its own origin (the device API); no forms, frames, plugins or base changes
APP_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; manifest-src 'self'; worker-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def app_url(server_url: str) -> str:
    """The app's address for a device API base URL (the app and the API share an origin)."""
    return server_url.rstrip("/") + PATH


def app_response(web: WebApp, path: str, environ: WSGIEnvironment) -> Response:
    """``path`` is below the prefix and starts with ``/app``."""
    if path == PATH.rstrip("/"):
        # The service worker's scope is the directory: the app's own URL ends with a slash.
        return Response(status=308, headers={"Location": web.prefix + PATH})
    name = _FILES.get(path[len(PATH) :])
    if name is None or environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
        return Response("not found", status=404, mimetype="text/plain")
    file = _FILES_DIR / name
    suffix = file.suffix
    mime = _TYPES.get(suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    response = Response(file.read_bytes(), mimetype=mime)
    headers = response.headers
    headers["Content-Security-Policy"] = APP_CSP
    # Revalidate every time: the service worker keeps the offline copy, and a fixed app must
    # reach phones at their next start, not after an hour.
    headers["Cache-Control"] = "no-cache"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    if web.is_https(environ) and web.config.web.hsts_max_age:
        headers["Strict-Transport-Security"] = f"max-age={web.config.web.hsts_max_age}"
    return response
