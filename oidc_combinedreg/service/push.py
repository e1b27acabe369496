"""Push authenticator: enrollment by QR code, sign-in approval with number matching, offline codes.

Everything lives in the store, under keys that expire (docs/methods/push.md has the protocol):

* ``push:enroll:<sha256(token)>`` the pending enrollment, taken (atomically, once) by the device;
  ``push:enrolled:<pending id>`` tells the waiting browser which device arrived;
* ``push:tx:<txid>`` one sign-in request, taken (atomically, once) by the device's signed answer;
  ``push:result:<txid>`` the answer, taken (once) by the browser session that holds the nonce;
* ``push:seq:<method id>`` / ``push:inbox:<method id>:<n>`` the device's inbox, in order;
* ``push:prompts:<user id>`` requests sent since the last approval (push-bombing limit).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pyotp

from ..config.push import PushConfig
from ..directory import DirectoryUser
from ..exceptions import (
    ChallengeExpired,
    InvalidInput,
    LimitReached,
    RateLimited,
    VerificationFailed,
)
from ..methods.kinds import METHOD_RULES, MethodKind
from ..methods.push import (
    EnrollmentPayload,
    Outcome,
    PushMethod,
    PushRequest,
    b64d,
    b64e,
    device_id_for,
    poll_message,
    remove_message,
    token_hash,
    verify_signature,
)
from ..methods.totp import TotpMethod
from ..notify import Change
from ..store.base import MethodRecord
from .base import ServiceContext, secret_context

if TYPE_CHECKING:
    from .webpush import WebPushNotifier

__all__ = ["DeviceSecrets", "PushService"]

#: how long an answer waits for the browser to pick it up once the device has answered
RESULT_GRACE = 60
#: how many of the newest inbox entries a poll looks at
INBOX_SCAN = 20
_WAITING = "We're still waiting for your approval. Approve the request in the app, then select Check again."


class DeviceSecrets:
    """What the record's encrypted ``secret`` holds: the device's public key, its TOTP seed and,
    once the web app asked for notifications, its Web Push subscription (the endpoint is a
    capability: whoever knows it can push to the phone; service/webpush.py)."""

    def __init__(
        self, public_key: bytes, totp_seed: str, web_push: dict[str, Any] | None = None
    ) -> None:
        self.public_key = public_key
        self.totp_seed = totp_seed
        self.web_push = web_push

    def dump(self) -> bytes:
        data: dict[str, Any] = {"public_key": b64e(self.public_key), "totp": self.totp_seed}
        if self.web_push is not None:
            data["web_push"] = self.web_push
        return json.dumps(data).encode()

    @classmethod
    def load(cls, raw: bytes) -> DeviceSecrets:
        data = json.loads(raw)
        return cls(b64d(data["public_key"]), str(data["totp"]), data.get("web_push"))


class PushService:
    kind = MethodKind.PUSH
    needs_start = True

    def __init__(self, ctx: ServiceContext, config: PushConfig | None = None) -> None:
        self.ctx = ctx
        self.config = config or ctx.config.push
        self.method = PushMethod(
            request_ttl=self.config.request_ttl, enrollment_ttl=self.config.enrollment_ttl
        )
        self.totp = TotpMethod(issuer=ctx.config.totp.issuer, drift_steps=1)
        self.limit = METHOD_RULES[self.kind].per_user
        self.web_push: WebPushNotifier | None = None
        if self.config.web_push is not None:
            from .webpush import WebPushNotifier

            self.web_push = WebPushNotifier(self, self.config.web_push)

    # -- enrollment: the browser's side -------------------------------------------------------

    def enrollment(
        self,
        user_id: str,
        account_name: str,
        pending: Mapping[str, Any] | None,
        *,
        server_url: str,
    ) -> tuple[EnrollmentPayload, dict[str, Any]]:
        """The QR payload; an unexpired pending enrollment is shown again (same QR code)."""
        now = self.ctx.clock.now()
        url = self.config.server_url or server_url
        if pending and pending.get("user_id") == user_id and float(pending["expires"]) > now:
            if self.ctx.store.peek_challenge(_enroll_key(str(pending["token"]))) is not None:
                return self._payload(dict(pending)), dict(pending)
        if self._count(user_id) >= self.limit:
            raise LimitReached(self.kind.value, self.limit)
        token, challenge = self.method.register_begin(now=now)
        state = {
            "user_id": user_id,
            "pending_id": secrets.token_urlsafe(16),
            "token": token,
            "account": account_name,
            "server_url": url,
            "expires": challenge["expires"],
        }
        challenge.update(
            {"user_id": user_id, "pending_id": state["pending_id"], "account": account_name}
        )
        self.ctx.store.put_challenge(_enroll_key(token), challenge, ttl=self.config.enrollment_ttl)
        return self._payload(state), state

    def _payload(self, state: Mapping[str, Any]) -> EnrollmentPayload:
        return EnrollmentPayload(
            server_url=str(state["server_url"]),
            token=str(state["token"]),
            account=str(state["account"]),
            issuer=self.ctx.config.totp.issuer,
        )

    def enrollment_status(self, pending: Mapping[str, Any] | None) -> tuple[str, str | None]:
        """``("done", method id)``, ``("pending", None)`` or ``("expired", None)``."""
        if not pending:
            return "expired", None
        done = self.ctx.store.peek_challenge(f"push:enrolled:{pending.get('pending_id')}")
        if done is not None and done.get("user_id") == pending.get("user_id"):
            return "done", str(done["method_id"])
        if self.ctx.store.peek_challenge(_enroll_key(str(pending.get("token")))) is not None:
            return "pending", None
        return "expired", None

    def _count(self, user_id: str) -> int:
        return sum(1 for m in self.ctx.store.list_methods(user_id) if m.kind is self.kind)

    # -- enrollment: the device's side --------------------------------------------------------

    def enroll_device(self, body: Mapping[str, Any], *, ip: str | None) -> tuple[MethodRecord, str]:
        """Register the device's key; returns the record and the TOTP seed for offline codes.

        The token is taken before anything else: whatever happens next, it is used up.
        """
        ctx = self.ctx
        token = body.get("token")
        if not isinstance(token, str) or not 20 <= len(token) <= 100:
            raise ChallengeExpired("unknown, used or expired enrollment token")
        challenge = ctx.store.take_challenge(_enroll_key(token))
        now = ctx.clock.now()
        spki, name = self.method.register_complete(challenge, dict(body), now=now)
        assert challenge is not None  # register_complete refused None
        user_id = str(challenge["user_id"])
        device_id = device_id_for(spki)
        seed = pyotp.random_base32(32)
        method_id = secrets.token_urlsafe(12)
        record = MethodRecord(
            id=method_id,
            user_id=user_id,
            kind=self.kind,
            label=name,
            created_at=now,
            data={"device_id": device_id, "account": str(challenge.get("account", ""))},
            secret=ctx.box.encrypt(
                DeviceSecrets(spki, seed).dump(), context=secret_context(user_id, method_id)
            ),
            lookup=f"push:{device_id}",
        )
        events, notice = ctx.method_change("method.added", Change.ADDED, record, ip=ip)
        try:
            ctx.store.add_method(record, limit=self.limit, events=events)
        except (LimitReached, InvalidInput) as exc:
            reason = "limit" if isinstance(exc, LimitReached) else "key already registered"
            ctx.audit("method.add_failed", user_id, "failure", ip=ip, kind="push", reason=reason)
            raise
        notice.send()
        ctx.store.put_challenge(
            f"push:enrolled:{challenge['pending_id']}",
            {"user_id": user_id, "method_id": method_id},
            ttl=self.config.enrollment_ttl,
        )
        return record, seed

    # -- the device's inbox and answers -------------------------------------------------------

    def device(self, device_id: object) -> MethodRecord:
        """The push record of ``device_id``; an unknown device is a failed signature, not a 404."""
        if not isinstance(device_id, str) or len(device_id) > 100:
            raise VerificationFailed("unknown device")
        record = self.ctx.store.find_method_by_lookup(f"push:{device_id}")
        if record is None or record.kind is not self.kind:
            raise VerificationFailed("unknown device")
        return record

    def secrets_of(self, record: MethodRecord) -> DeviceSecrets:
        raw = self.ctx.box.decrypt(record.secret, context=secret_context(record.user_id, record.id))
        return DeviceSecrets.load(raw)

    def pending_for(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The requests waiting for this device, after checking the signed, timestamped poll."""
        return self.poll(body)[1]

    def poll(self, body: Mapping[str, Any]) -> tuple[MethodRecord, list[dict[str, Any]]]:
        """:meth:`pending_for`, with the device's record (the poll's answer says more of it)."""
        record = self._signed(body, poll_message)
        return record, [self._shown(record, tx) for tx in self._inbox(record)]

    def removal(self, body: Mapping[str, Any]) -> MethodRecord:
        """The device that signed this removal request (the caller deletes it under the
        replace-before-remove rule of the security-info page)."""
        return self._signed(body, remove_message)

    def _signed(
        self, body: Mapping[str, Any], message: Callable[[str, int], bytes]
    ) -> MethodRecord:
        """The device of a signed, timestamped request (``clock_skew``), or VerificationFailed."""
        record = self.device(body.get("device_id"))
        now = self.ctx.clock.now()
        timestamp = body.get("timestamp")
        if not PushMethod.timestamp_fresh(timestamp, now, self.config.clock_skew):
            raise VerificationFailed("stale timestamp")
        assert isinstance(timestamp, int)
        spki = self.secrets_of(record).public_key
        verify_signature(spki, message(str(body["device_id"]), timestamp), body.get("signature"))
        return record

    def _inbox(self, record: MethodRecord) -> list[dict[str, Any]]:
        store = self.ctx.store
        last = store.get_count(f"push:seq:{record.id}")
        out = []
        for n in range(max(1, last - INBOX_SCAN + 1), last + 1):
            entry = store.peek_challenge(f"push:inbox:{record.id}:{n}")
            tx = store.peek_challenge(f"push:tx:{entry['txid']}") if entry else None
            if tx is not None and tx.get("method_id") == record.id:
                out.append(tx)
        return out

    @staticmethod
    def _shown(record: MethodRecord, tx: Mapping[str, Any]) -> dict[str, Any]:
        request = PushRequest.from_dict(dict(tx["request"]))
        return {
            "transaction_id": request.txid,
            "challenge": request.challenge,
            "numbers": list(request.choices),
            "client_ip": tx.get("ip"),
            "app": tx.get("app") or "",
            "account": record.data.get("account", ""),
            "created_at": int(request.created_at),
            "expires_at": int(request.expires_at),
        }

    def respond(self, body: Mapping[str, Any], *, ip: str | None) -> Outcome:
        """Record the device's signed answer. Checked first, then taken: a forged or another
        device's answer never uses up the request; a replayed one finds it gone."""
        ctx = self.ctx
        record = self.device(body.get("device_id"))
        txid = body.get("transaction_id")
        if not isinstance(txid, str) or len(txid) > 64:
            raise InvalidInput("transaction_id", "expected a transaction id")
        tx = ctx.store.peek_challenge(f"push:tx:{txid}")
        if tx is None:
            raise ChallengeExpired("unknown, answered or expired request")
        request = PushRequest.from_dict(dict(tx["request"]))
        spki = self.secrets_of(record).public_key
        if tx.get("method_id") != record.id:
            # Audited only when this device really signed it: a forged answer writes nothing.
            try:
                self.method.authenticate_complete(request, spki, dict(body), now=ctx.clock.now())
            except (InvalidInput, ChallengeExpired, VerificationFailed):
                raise VerificationFailed("not this device's request") from None
            ctx.audit("push.foreign_answer", record.user_id, "failure", ip=ip, method_id=record.id)
            raise VerificationFailed("not this device's request")
        outcome = self.method.authenticate_complete(request, spki, dict(body), now=ctx.clock.now())
        if ctx.store.take_challenge(f"push:tx:{txid}") is None:
            raise ChallengeExpired("unknown, answered or expired request")
        result = {
            "outcome": outcome.value,
            "user_id": record.user_id,
            "method_id": record.id,
            "binding": request.binding,
        }
        ttl = max(1.0, request.expires_at - ctx.clock.now()) + RESULT_GRACE
        ctx.store.put_challenge(f"push:result:{txid}", result, ttl=ttl)
        self._after_answer(record, outcome, ip=ip, app=str(tx.get("app") or ""))
        return outcome

    def _after_answer(
        self, record: MethodRecord, outcome: Outcome, *, ip: str | None, app: str
    ) -> None:
        ctx, user_id = self.ctx, record.user_id
        if outcome is Outcome.REPORTED:
            state = ctx.store.get_user_state(user_id)
            extra = {**state.extra, "push_reported_at": ctx.clock.now()}
            event = ctx.event(
                "push.reported", user_id, "failure", ip=ip, method_id=record.id, app=app
            )
            ctx.store.put_user_state(replace(state, extra=extra), events=[event])
            return
        outcome_label = "success" if outcome is Outcome.APPROVED else "failure"
        ctx.audit(
            f"push.{outcome.value}", user_id, outcome_label, ip=ip, method_id=record.id, app=app
        )

    # -- sign-in: the browser's side (MfaVerifier) --------------------------------------------

    def start(
        self, user: DirectoryUser, record: MethodRecord, state: dict[str, Any], *, ip: str | None
    ) -> dict[str, Any]:
        return self.send(user.id, record, state, ip=ip, app=str(state.get("app") or ""))

    def send(
        self, user_id: str, record: MethodRecord, state: dict[str, Any], *, ip: str | None, app: str
    ) -> dict[str, Any]:
        """Send a request to the device; ``state`` (kept in the session) gets its id and nonce."""
        ctx, cfg = self.ctx, self.config
        if record.user_id != user_id or record.kind is not self.kind:
            raise VerificationFailed("not this user's device")
        prompts = ctx.store.incr(f"push:prompts:{user_id}", ttl=cfg.prompt_window)
        if prompts > cfg.max_prompts:
            ctx.audit("push.refused", user_id, "blocked", ip=ip, reason="too many prompts")
            raise RateLimited(retry_after=cfg.prompt_window, scope="push")
        request, nonce = self.method.authenticate_begin(now=ctx.clock.now())
        tx = {
            "request": request.to_dict(),
            "user_id": user_id,
            "method_id": record.id,
            "ip": ip,
            "app": app[:100],
        }
        ctx.store.put_challenge(f"push:tx:{request.txid}", tx, ttl=cfg.request_ttl)
        n = ctx.store.incr(f"push:seq:{record.id}", ttl=None)
        ctx.store.put_challenge(
            f"push:inbox:{record.id}:{n}", {"txid": request.txid}, ttl=cfg.request_ttl
        )
        state.update({"txid": request.txid, "nonce": nonce})
        ctx.audit("push.sent", user_id, "info", ip=ip, method_id=record.id, app=app[:100])
        if self.web_push is not None:
            self.web_push.notify(record)  # in the background: never holds up the sign-in
        return {"number": request.number, "expires_at": int(request.expires_at)}

    def request_status(self, state: Mapping[str, Any] | None) -> str:
        """``pending``, ``answered`` (approved or not: the verify call tells) or ``expired``."""
        txid = (state or {}).get("txid")
        if not isinstance(txid, str):
            return "expired"
        result = self.ctx.store.peek_challenge(f"push:result:{txid}")
        if result is not None:
            return "answered"
        if self.ctx.store.peek_challenge(f"push:tx:{txid}") is not None:
            return "pending"
        return "expired"

    def verify(
        self,
        user: DirectoryUser,
        record: MethodRecord,
        response: Mapping[str, Any],
        state: dict[str, Any],
        *,
        ip: str | None,
    ) -> tuple[str, ...]:
        """An approved request (amr ``swk``), or the app's offline code (amr ``otp``)."""
        if response.get("code"):
            self.verify_code(user.id, record, response.get("code"), ip=ip)
            return ("otp",)
        self.take_approval(user.id, record, state, ip=ip)
        return ("swk",)

    def take_approval(
        self, user_id: str, record: MethodRecord, state: dict[str, Any], *, ip: str | None
    ) -> None:
        """Use the device's answer (once). Raises ``InvalidInput("push", ...)`` while it waits."""
        ctx = self.ctx
        txid, nonce = state.get("txid"), state.get("nonce")
        if not isinstance(txid, str):
            raise ChallengeExpired("no request in progress")
        result = ctx.store.take_challenge(f"push:result:{txid}")
        if result is None:
            if ctx.store.peek_challenge(f"push:tx:{txid}") is not None:
                raise InvalidInput("push", _WAITING)
            state.pop("txid", None)
            raise ChallengeExpired("the request expired")
        state.pop("txid", None)
        state.pop("nonce", None)
        bound = (
            result.get("user_id") == user_id
            and result.get("method_id") == record.id
            and self.method.session_matches(str(result.get("binding")), nonce)
        )
        if not bound:
            ctx.audit("mfa.failed", user_id, "failure", ip=ip, kind="push", reason="session")
            raise VerificationFailed("session")
        if result.get("outcome") != Outcome.APPROVED.value:
            ctx.audit(
                "mfa.failed", user_id, "failure", ip=ip, kind="push", reason=result.get("outcome")
            )
            raise VerificationFailed(str(result.get("outcome")))
        # One write: the device's use (the security-info page's "Last used"), the success and
        # the cleared push-bombing count. A device removed or reported since it answered is
        # no longer one to sign in with (as a reported app's code never passes).
        success = ctx.event("mfa.succeeded", user_id, "success", ip=ip, kind="push",
                            method_id=record.id)  # fmt: skip
        prompts = f"push:prompts:{user_id}"
        now = ctx.clock.now()
        if not ctx.store.record_use(user_id, record.id, now, events=[success], reset=[prompts]):
            ctx.audit("mfa.failed", user_id, "failure", ip=ip, kind="push", reason="removed")
            raise VerificationFailed("removed")

    def verify_code(
        self, user_id: str, record: MethodRecord, code: object, *, ip: str | None
    ) -> int:
        """The app's offline TOTP code: throttled and replay-proof, like an authenticator app."""

        def match(now: float) -> int:
            seed = self.secrets_of(record).totp_seed
            return self.totp.authenticate_complete(seed, code, last_step=record.counter, now=now)

        return self.ctx.check_code(user_id, record, match, ip=ip)


def _enroll_key(token: str) -> str:
    return f"push:enroll:{token_hash(token)}"
