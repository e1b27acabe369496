"""A local RFC 8030 push service for the Web Push tests: an HTTP server on 127.0.0.1 that plays
the browser's push service and the browser at once.

For every POST to ``/push/<name>`` it checks what a push service checks (RFC 8292: the
``Authorization: vapid t=<JWT>,k=<key>`` header, the JWT's ES256 signature with ``k`` and its
``aud``, ``exp`` and ``sub`` claims; RFC 8030 5.2 ``TTL``) and what the browser does (RFC 8291:
decrypts the ``aes128gcm`` body with the subscription's private key and auth secret, via
http_ece). It keeps what it received and answers ``status`` (201, as RFC 8030 5 says; or 404 /
410 to say the subscription is gone); ``hold`` makes it wait before answering (a push service
that does not answer).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    claims: dict[str, Any]
    plaintext: bytes
    problems: list[str]


@dataclass
class Browser:
    """The user agent's side of one subscription (RFC 8291 3: its key pair and auth secret)."""

    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64e(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )


class Receiver:
    def __init__(self, *, subject: str, server_key: str) -> None:
        self.subject, self.server_key = subject, server_key
        self.browsers: dict[str, Browser] = {}
        self.received: list[Received] = []
        self.status = 201
        self.hold = threading.Event()
        self.hold.set()  # cleared: requests wait until it is set again
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    got = receiver.check(self.path, dict(self.headers), body)
                except Exception as exc:  # noqa: BLE001 (a bad signature or body: a finding)
                    got = Received(self.path, dict(self.headers), {}, b"", [repr(exc)])
                receiver.received.append(got)
                receiver.arrived.set()
                receiver.hold.wait(30)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def subscription(self, name: str = "phone") -> dict[str, Any]:
        """A PushSubscription's JSON (as the Push API's ``toJSON()`` gives it) for a new browser."""
        browser = self.browsers[name] = Browser()
        return {
            "endpoint": f"{self.url}/push/{name}",
            "keys": {"p256dh": browser.p256dh, "auth": b64e(browser.auth)},
        }

    def check(self, path: str, headers: dict[str, str], body: bytes) -> Received:
        problems: list[str] = []
        claims: dict[str, Any] = {}
        auth = headers.get("Authorization", "")
        scheme, _, params = auth.partition(" ")
        fields = dict(p.split("=", 1) for p in params.split(",") if "=" in p)
        if scheme != "vapid" or set(fields) != {"t", "k"}:
            problems.append(f"Authorization is not 'vapid t=..,k=..' (RFC 8292 3): {auth!r}")
        else:
            claims = self._claims(fields["t"], fields["k"], problems)
        if headers.get("TTL") is None or not headers["TTL"].isdigit():
            problems.append("no TTL (RFC 8030 5.2)")
        if headers.get("Content-Encoding") != "aes128gcm":
            problems.append("Content-Encoding is not aes128gcm (RFC 8291 4)")
        browser = self.browsers.get(path.rsplit("/", 1)[-1])
        plaintext = b""
        if browser is None:
            problems.append(f"no subscription at {path}")
        else:
            plaintext = http_ece.decrypt(
                body,
                private_key=browser.private_key,
                auth_secret=browser.auth,
                version="aes128gcm",
            )
        return Received(path, headers, claims, plaintext, problems)

    def _claims(self, token: str, key: str, problems: list[str]) -> dict[str, Any]:
        if key != self.server_key:
            problems.append("k is not the configured application server key")
        head, payload, signature = token.split(".")
        header = json.loads(b64d(head))
        if header.get("alg") != "ES256" or header.get("typ") != "JWT":
            problems.append(f"JWT header {header} (RFC 8292 2: ES256)")
        raw = b64d(signature)
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(key))
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        public.verify(der, f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))  # or raises
        claims: dict[str, Any] = json.loads(b64d(payload))
        if claims.get("aud") != self.url:
            problems.append(f"aud {claims.get('aud')!r} is not the push resource's origin")
        now = time.time()
        if not now < claims.get("exp", 0) <= now + 24 * 3600:
            problems.append(f"exp {claims.get('exp')} not within 24 hours (RFC 8292 2)")
        if claims.get("sub") != self.subject:
            problems.append(f"sub {claims.get('sub')!r} is not the configured subject")
        return claims

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
