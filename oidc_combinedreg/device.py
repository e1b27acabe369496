"""The reference push authenticator: what a phone app does, as ``combinedreg authenticator ...``.

It keeps its state (private key, TOTP seed, server URL, device id) in a local JSON file, mode 0600,
and talks to the server's device API over HTTP with the standard library. It is a test tool and a
readable model for app developers (docs/methods/push.md is the protocol it follows), not a product:
a real app keeps its key in the platform's key store.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import pyotp
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .clock import Clock, SystemClock
from .methods.push import (
    EnrollmentPayload,
    b64e,
    enroll_message,
    poll_message,
    remove_message,
    response_message,
)

__all__ = ["Device", "DeviceError", "DeviceState", "authenticator_cli"]


class DeviceError(Exception):
    """The server refused a request (``status`` and its JSON ``body``) or could not be reached."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        super().__init__(f"HTTP {status}: {body.get('error', body)}")


@dataclass(kw_only=True)
class DeviceState:
    server_url: str
    device_id: str
    device_name: str
    account: str
    issuer: str
    #: PKCS#8 PEM of the device's P-256 private key
    private_key: str
    totp_secret: str

    def save(self, path: Path) -> None:
        """Write with mode 0600 (the private key is in it), atomically."""
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(self), fh, indent=2)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> DeviceState:
        return cls(**json.loads(path.read_text()))


#: how the device sends a JSON POST: (url, body) -> the JSON answer, or DeviceError
Transport = Callable[[str, dict[str, Any]], dict[str, Any]]


def http_post(url: str, body: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return dict(json.loads(response.read() or b"{}"))
    except urllib.error.HTTPError as exc:
        try:
            payload = dict(json.loads(exc.read() or b"{}"))
        except ValueError:
            payload = {"error": exc.reason}
        raise DeviceError(exc.code, payload) from None
    except urllib.error.URLError as exc:
        raise DeviceError(0, {"error": str(exc.reason)}) from None


def _sign(key: ec.EllipticCurvePrivateKey, message: bytes) -> str:
    return b64e(key.sign(message, ec.ECDSA(hashes.SHA256())))


class Device:
    """One enrolled device."""

    def __init__(
        self, state: DeviceState, *, clock: Clock | None = None, transport: Transport | None = None
    ) -> None:
        self.state = state
        self.clock = clock or SystemClock()
        self.post = transport or http_post
        key = serialization.load_pem_private_key(state.private_key.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self._key = key

    @classmethod
    def enroll(
        cls,
        payload: str,
        device_name: str,
        *,
        clock: Clock | None = None,
        transport: Transport | None = None,
    ) -> Device:
        """Generate a key pair, register it with the QR payload's one-time token."""
        parsed = EnrollmentPayload.parse(payload)
        key = ec.generate_private_key(ec.SECP256R1())
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        public = b64e(spki)
        body = {
            "token": parsed.token,
            "public_key": public,
            "device_name": device_name,
            "signature": _sign(key, enroll_message(parsed.token, public, device_name)),
        }
        answer = (transport or http_post)(parsed.server_url + "/device/enroll", body)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        state = DeviceState(
            server_url=parsed.server_url,
            device_id=str(answer["device_id"]),
            device_name=device_name,
            account=str(answer.get("account", parsed.account)),
            issuer=str(answer.get("issuer", parsed.issuer)),
            private_key=pem,
            totp_secret=str(answer["totp"]["secret"]),
        )
        return cls(state, clock=clock, transport=transport)

    def pending(self) -> list[dict[str, Any]]:
        now = int(self.clock.now())
        body = {
            "device_id": self.state.device_id,
            "timestamp": now,
            "signature": _sign(self._key, poll_message(self.state.device_id, now)),
        }
        return list(self.post(self.state.server_url + "/device/pending", body)["requests"])

    def respond(self, request: dict[str, Any], number: int, decision: str) -> dict[str, Any]:
        txid, challenge = str(request["transaction_id"]), str(request["challenge"])
        body = {
            "device_id": self.state.device_id,
            "transaction_id": txid,
            "number": number,
            "decision": decision,
            "signature": _sign(self._key, response_message(txid, challenge, number, decision)),
        }
        return self.post(self.state.server_url + "/device/respond", body)

    def remove(self) -> dict[str, Any]:
        """Ask the server to forget this device (signed and timestamped like a poll)."""
        now = int(self.clock.now())
        body = {
            "device_id": self.state.device_id,
            "timestamp": now,
            "signature": _sign(self._key, remove_message(self.state.device_id, now)),
        }
        return self.post(self.state.server_url + "/device/remove", body)

    def code(self) -> str:
        return pyotp.TOTP(self.state.totp_secret).at(self.clock.now())


# -- the CLI ------------------------------------------------------------------------------------

_STATE = click.option(
    "--state",
    "state_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="the device's state file (created by enroll, mode 0600)",
)
_TX = click.option("--transaction", default=None, help="answer this request (default: the newest)")


def _device(state_file: Path) -> Device:
    try:
        return Device(DeviceState.load(state_file))
    except (OSError, ValueError, TypeError) as exc:
        raise click.ClickException(f"cannot read {state_file}: {exc}") from None


def _choose(device: Device, transaction: str | None) -> dict[str, Any]:
    requests = device.pending()
    if transaction is not None:
        requests = [r for r in requests if r["transaction_id"] == transaction]
    if not requests:
        raise click.ClickException("no pending request")
    return max(requests, key=lambda r: int(r["created_at"]))


def _fail(exc: DeviceError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


@click.group("authenticator")
def authenticator_cli() -> None:
    """A reference push authenticator device (for tests and app developers)."""


@authenticator_cli.command("enroll")
@click.argument("payload")
@_STATE
@click.option("--name", default="Reference device", show_default=True, help="device name")
def enroll_command(payload: str, state_file: Path, name: str) -> None:
    """Enroll with the QR code's PAYLOAD (combinedreg-push://enroll?...)."""
    try:
        device = Device.enroll(payload, name)
    except DeviceError as exc:
        _fail(exc)
        return
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    device.state.save(state_file)
    click.echo(f"enrolled: {device.state.device_id}")


@authenticator_cli.command("pending")
@_STATE
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def pending_command(state_file: Path, as_json: bool) -> None:
    """List the sign-in requests waiting for this device."""
    try:
        requests = _device(state_file).pending()
    except DeviceError as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps(requests))
        return
    for r in requests:
        numbers = ", ".join(str(n) for n in r["numbers"])
        click.echo(f"{r['transaction_id']}  {r['app']}  from {r['client_ip']}  pick one: {numbers}")


@authenticator_cli.command("approve")
@click.argument("number", type=int)
@_STATE
@_TX
def approve_command(number: int, state_file: Path, transaction: str | None) -> None:
    """Approve the request by picking NUMBER (the one the browser shows)."""
    device = _device(state_file)
    try:
        request = _choose(device, transaction)
        if number not in request["numbers"]:
            raise click.ClickException(f"{number} is not one of the numbers offered")
        answer = device.respond(request, number, "approve")
    except DeviceError as exc:
        _fail(exc)
        return
    click.echo(f"result: {answer['result']}")


@authenticator_cli.command("deny")
@_STATE
@_TX
@click.option("--report", is_flag=True, help="this wasn't me: report it")
def deny_command(state_file: Path, transaction: str | None, report: bool) -> None:
    """Deny the request (with --report: flag it as not yours)."""
    device = _device(state_file)
    try:
        request = _choose(device, transaction)
        answer = device.respond(request, 0, "report" if report else "deny")
    except DeviceError as exc:
        _fail(exc)
        return
    click.echo(f"result: {answer['result']}")
    if answer.get("message"):
        click.echo(str(answer["message"]))


@authenticator_cli.command("remove")
@_STATE
def remove_command(state_file: Path) -> None:
    """Remove this device from the server, then delete the state file (its private key).

    The server keeps a device the user's policies still need (error ``replace_first``): the
    state file then stays, so the device can still answer."""
    try:
        answer = _device(state_file).remove()
    except DeviceError as exc:
        _fail(exc)
        return
    state_file.unlink()
    click.echo(f"result: {answer['result']}")


@authenticator_cli.command("code")
@_STATE
def code_command(state_file: Path) -> None:
    """Print the current offline code (TOTP)."""
    click.echo(_device(state_file).code())
