"""Web Push notifications to the authenticator web app: "a sign-in is waiting", nothing more.

RFC 8030 (push protocol: one POST to the subscription's endpoint, ``TTL``, ``Urgency``,
``Topic``), RFC 8291 (the body encrypted to the browser's keys, ``aes128gcm`` of RFC 8188) and
RFC 8292 (VAPID: a JWT signed with the server's key in ``Authorization: vapid t=..,k=..``).
pywebpush (its ``WebPusher.encode``, over http-ece) encrypts, py-vapid signs; the POST itself is
ours, because the endpoint comes from a device and the server must not be made to call its own
network (SSRF): every address a name resolves to is checked when the socket connects, redirects
are not followed, and each network step has a short timeout.

A send never holds up the sign-in: it runs on a small background pool after the request is stored
(the app polls while it is open, so a lost notice costs only the user's attention). A push
service's 404 or 410 (RFC 8030 7.3: the subscription is gone) removes the subscription.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import ipaddress
import json
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from ..config.model import Environment
from ..config.web_push import WebPushConfig
from ..exceptions import InvalidInput, VerificationFailed
from ..methods.push import PROTOCOL
from ..store.base import MethodRecord
from .base import secret_context

if TYPE_CHECKING:
    from .push import PushService

__all__ = [
    "PAYLOAD",
    "Subscription",
    "WebPushNotifier",
    "address_allowed",
    "parse_subscription",
    "subscribe_message",
    "unsubscribe_message",
]

log = logging.getLogger(__name__)

#: what every notice says, encrypted: the kind of event only. No number, account, application or
#: address: the app fetches the request itself with a signed poll (docs/methods/push.md)
PAYLOAD = json.dumps({"type": "sign-in-request"}).encode()
#: push services' endpoints are a few hundred characters; a longer one is refused
MAX_ENDPOINT = 1024
#: RFC 8292 2: ``exp`` at most 24 hours ahead; one hour is plenty for a token made per send
VAPID_LIFETIME = 3600
#: sends in flight or queued per process; more are dropped (logged): the app still polls
MAX_QUEUED = 64
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def subscribe_message(device_id: str, timestamp: int, sub: Subscription) -> bytes:
    return _message("subscribe", device_id, str(timestamp), sub.endpoint, sub.p256dh, sub.auth)


def unsubscribe_message(device_id: str, timestamp: int) -> bytes:
    return _message("unsubscribe", device_id, str(timestamp))


def _message(*parts: str) -> bytes:
    if any("\n" in part for part in parts):
        raise InvalidInput("message", "a field contains a line break")
    return "\n".join((PROTOCOL, *parts)).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Subscription:
    """A browser's PushSubscription (W3C Push API): endpoint and its RFC 8291 keys (base64url)."""

    endpoint: str
    p256dh: str
    auth: str

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Subscription:
        keys = data["keys"]
        return cls(str(data["endpoint"]), str(keys["p256dh"]), str(keys["auth"]))


def _b64d(value: object, field: str, size: int) -> bytes:
    if not isinstance(value, str) or len(value) > 200:
        raise InvalidInput(field, "expected base64url text")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInput(field, "expected base64url text") from None
    if len(raw) != size:
        raise InvalidInput(field, f"expected {size} bytes, got {len(raw)}")
    return raw


def address_allowed(ip: str, *, development: bool) -> bool:
    """May the server connect to ``ip``? Public unicast addresses only; in development also
    loopback (the tests' local push service)."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_global and not addr.is_multicast:
        return True
    return development and addr.is_loopback


def parse_subscription(value: object, *, development: bool) -> Subscription:
    """The ``subscription`` of a subscribe request, checked: an https endpoint on a public host
    (in development also http on loopback), and a valid P-256 key and 16-byte auth secret
    (RFC 8291 3)."""
    if not isinstance(value, Mapping) or not isinstance(value.get("keys"), Mapping):
        raise InvalidInput("subscription", "expected {endpoint, keys: {p256dh, auth}}")
    endpoint = value.get("endpoint")
    if not isinstance(endpoint, str) or not 0 < len(endpoint) <= MAX_ENDPOINT:
        raise InvalidInput("endpoint", f"expected a URL of at most {MAX_ENDPOINT} characters")
    if not all(33 <= ord(c) <= 126 for c in endpoint):
        raise InvalidInput("endpoint", "expected a URL without spaces or control characters")
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        raise InvalidInput("endpoint", "expected a URL") from None
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        raise InvalidInput("endpoint", "expected a URL with a host, no user and no fragment")
    loopback = host in _LOOPBACK_NAMES or host.endswith(".localhost")
    if not (parts.scheme == "https" or (development and parts.scheme == "http" and loopback)):
        raise InvalidInput("endpoint", "expected an https URL")
    if loopback and not development:
        raise InvalidInput("endpoint", "expected a public host")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass  # a name: its addresses are checked when the send connects
    else:
        if not address_allowed(host, development=development):
            raise InvalidInput("endpoint", "expected a public host")
    keys = value["keys"]
    p256dh = _b64d(keys.get("p256dh"), "p256dh", 65)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        raise InvalidInput("p256dh", "expected an uncompressed P-256 point") from None
    _b64d(keys.get("auth"), "auth", 16)
    return Subscription(endpoint, str(keys["p256dh"]), str(keys["auth"]))


def _guarded_connect(development: bool) -> Callable[..., socket.socket]:
    """``socket.create_connection`` that connects only to allowed addresses: checked per address
    the name resolves to, at connect time (a name that resolves to a private address, or is
    re-pointed after the subscription was checked, is refused)."""

    def connect(
        address: tuple[str, int], timeout: float | None = None, source: Any = None
    ) -> socket.socket:
        host, port = address
        error: OSError = OSError(f"no allowed address for {host}")
        for family, kind, proto, _, sockaddr in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        ):
            if not address_allowed(str(sockaddr[0]), development=development):
                error = OSError(f"{host} resolves to a refused address")
                continue
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(timeout)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error

    return connect


class _HTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int | None, *, timeout: float, development: bool) -> None:
        super().__init__(host, port, timeout=timeout)
        self._create_connection = _guarded_connect(development)


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int | None, *, timeout: float, development: bool) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._create_connection = _guarded_connect(development)


class _Pool:
    """One small thread pool per process (made again after a fork), shared by every notifier."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._executor: ThreadPoolExecutor | None = None

    def submit(self, fn: Callable[[], None]) -> Future[None]:
        with self._lock:
            if self._executor is None or self._pid != os.getpid():
                self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="webpush")
                self._pid = os.getpid()
            return self._executor.submit(fn)


_POOL = _Pool()


class WebPushNotifier:
    """Keeps each push device's subscription (inside its encrypted secret) and sends notices."""

    def __init__(self, push: PushService, config: WebPushConfig) -> None:
        # the webpush extra: the config reader checked it is there
        from py_vapid import Vapid  # type: ignore[import-untyped]

        self.push = push
        self.ctx = push.ctx
        self.config = config
        raw = base64.urlsafe_b64encode(config.vapid_private_key).rstrip(b"=")
        self.vapid = Vapid.from_raw(raw)
        self.development = self.ctx.config.general.environment is Environment.DEVELOPMENT
        self._inflight: set[Future[None]] = set()
        self._lock = threading.Lock()

    # -- the device's side: subscribe, unsubscribe ------------------------------------------

    def info(self, record: MethodRecord) -> dict[str, Any]:
        """What a poll's answer tells the app: the key to subscribe with, and whether this
        device has a subscription here (after a 410 it has not, and the app offers it again)."""
        return {
            "application_server_key": self.config.application_server_key,
            "subscribed": self._subscription(record) is not None,
        }

    def _subscription(self, record: MethodRecord) -> Subscription | None:
        """The device's subscription, if it was made for this server key: one made for an
        earlier key (the key was replaced) is refused by the push service, and the app makes
        a new one when the poll says it has none."""
        raw = self.push.secrets_of(record).web_push
        if raw is None or raw.get("server_key") != self.config.application_server_key:
            return None
        return Subscription.from_dict(raw)

    def subscribe(self, body: Mapping[str, Any], *, ip: str | None) -> MethodRecord:
        """Store the device's subscription (signed, timestamped like a poll)."""
        sub = parse_subscription(body.get("subscription"), development=self.development)
        record = self.push._signed(body, lambda d, t: subscribe_message(d, t, sub))
        if not self._store(record, sub, "push.subscribed", ip=ip, reason="app"):
            raise VerificationFailed("unknown device")  # deleted meanwhile
        return record

    def unsubscribe(self, body: Mapping[str, Any], *, ip: str | None) -> MethodRecord:
        record = self.push._signed(body, unsubscribe_message)
        if not self._store(record, None, "push.unsubscribed", ip=ip, reason="app"):
            raise VerificationFailed("unknown device")
        return record

    def _store(
        self,
        record: MethodRecord,
        sub: Subscription | None,
        event: str,
        *,
        ip: str | None,
        reason: str,
    ) -> bool:
        ctx = self.ctx
        secrets = self.push.secrets_of(record)
        secrets.web_push = (
            {**sub.to_dict(), "server_key": self.config.application_server_key} if sub else None
        )
        sealed = ctx.box.encrypt(secrets.dump(), context=secret_context(record.user_id, record.id))
        # The endpoint is a capability (whoever knows it can push to the phone): only its host
        # goes to the audit log.
        service = urlsplit(sub.endpoint).hostname if sub else None
        detail = {"method_id": record.id, "reason": reason, "service": service}
        events = [ctx.event(event, record.user_id, "info", ip=ip, **detail)]
        return ctx.store.update_method(replace(record, secret=sealed), events=events)

    # -- the server's side: send ------------------------------------------------------------

    def notify(self, record: MethodRecord) -> Future[None] | None:
        """Send "a sign-in is waiting" to the device, in the background; None when it has no
        subscription (or too many sends are queued: the app still polls)."""
        sub = self._subscription(record)
        if sub is None:
            return None
        with self._lock:
            if len(self._inflight) >= MAX_QUEUED:
                log.warning("web push: %d sends queued, this notice is dropped", MAX_QUEUED)
                return None
            future = _POOL.submit(lambda: self._deliver(record.user_id, record.id, sub))
            self._inflight.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._inflight.discard(future)

    def drain(self, timeout: float) -> bool:
        """Wait for the sends in flight (tests, and a graceful shutdown); True when none is left."""
        with self._lock:
            pending = list(self._inflight)
        return not wait(pending, timeout=timeout).not_done

    def _deliver(self, user_id: str, method_id: str, sub: Subscription) -> None:
        try:
            status = self.send(sub)
        except Exception as exc:  # noqa: BLE001 (a notice is best effort; the sign-in goes on)
            self._failed(user_id, method_id, sub, type(exc).__name__)
            return
        if status in (404, 410):
            self._gone(user_id, method_id, sub, status)
        elif not 200 <= status < 300:
            self._failed(user_id, method_id, sub, f"HTTP {status}")

    def send(self, sub: Subscription) -> int:
        """One RFC 8030 push message; returns the push service's status code."""
        from pywebpush import WebPusher  # type: ignore[import-untyped]

        body = WebPusher(sub.to_dict()).encode(PAYLOAD, "aes128gcm")["body"]
        parts = urlsplit(sub.endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        claims = {
            "aud": audience,  # RFC 8292 2: the push resource's origin
            "exp": int(time.time()) + VAPID_LIFETIME,  # the push service's clock, not a test's
            "sub": self.config.subject,
        }
        headers = {
            **self.vapid.sign(claims),
            "TTL": str(self.config.ttl),  # RFC 8030 5.2
            "Urgency": "high",  # RFC 8030 5.3: someone is waiting at a sign-in screen
            "Topic": "sign-in",  # RFC 8030 5.4: a newer notice replaces an undelivered one
            "Content-Encoding": "aes128gcm",  # RFC 8291 4
            "Content-Type": "application/octet-stream",
        }
        cls = _HTTPSConnection if parts.scheme == "https" else _HTTPConnection
        conn = cls(
            parts.hostname or "",
            parts.port,
            timeout=self.config.timeout,
            development=self.development,
        )
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn.request("POST", target, body=body, headers=headers)
            response = conn.getresponse()
            response.read(4096)  # the answer's body is not needed; never read much of it
            return response.status
        finally:
            conn.close()

    def _gone(self, user_id: str, method_id: str, sub: Subscription, status: int) -> None:
        """RFC 8030 7.3: the subscription expired or was removed; forget it, unless the device
        subscribed anew meanwhile."""
        try:
            record = self.ctx.store.get_method(user_id, method_id)
            if record is None or self._subscription(record) != sub:
                return
            self._store(record, None, "push.unsubscribed", ip=None, reason=f"HTTP {status}")
        except Exception:  # noqa: BLE001 (a background task: log, never raise into the pool)
            log.exception("web push: could not remove a gone subscription of %s", method_id)

    def _failed(self, user_id: str, method_id: str, sub: Subscription, reason: str) -> None:
        service = urlsplit(sub.endpoint).hostname
        log.warning("web push to %s for %s failed: %s", service, method_id, reason)
        try:
            self.ctx.audit(
                "push.notify_failed",
                user_id,
                "failure",
                method_id=method_id,
                service=service,
                reason=reason,
            )
        except Exception:  # noqa: BLE001
            log.exception("web push: could not audit a failed send")
