"""Security keys and passkeys (WebAuthn): registration and verification over the store (a key is
renamed as every named method is: ``SecurityInfo.rename_method``).

Challenges live in the store (``put_challenge``/``take_challenge``: atomic, single use, expiring),
under a random key the caller keeps in the session: a challenge is usable once, only from the
session that asked for it, and only for the ceremony it was made for. The credential id is the
record's globally unique ``lookup``, so the store refuses one credential registered twice (to any
user); the sign counter advances with the store's compare-and-set ``advance_counter``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from ..directory import DirectoryUser
from ..exceptions import (
    ChallengeExpired,
    InvalidInput,
    LimitReached,
    MethodError,
    VerificationFailed,
)
from ..methods.kinds import METHOD_RULES, MethodKind
from ..methods.webauthn import (
    REGISTER,
    CounterRegression,
    WebAuthnMethod,
    b64,
    check_counter,
    clean_label,
    decode_b64,
    new_user_handle,
)
from ..notify import Change
from ..store.base import AuditEvent, MethodRecord
from .base import ServiceContext

__all__ = ["WebAuthnService"]

_KEY_PREFIX = "webauthn:"
#: the ``state`` key under which the MFA step keeps this method's challenge key
STATE_KEY = "webauthn_challenge"


class WebAuthnService:
    kind = MethodKind.WEBAUTHN
    needs_start = True

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.method = WebAuthnMethod(ctx.config.webauthn, rp_name=ctx.config.general.organization)
        self.limit = METHOD_RULES[self.kind].per_user

    # -- helpers ------------------------------------------------------------------------------

    def keys(self, user_id: str) -> list[MethodRecord]:
        return [m for m in self.ctx.store.list_methods(user_id) if m.kind is self.kind]

    def _user_handle(self, keys: list[MethodRecord]) -> bytes:
        # One stable handle per user, so a new resident key replaces the old one on the same
        # authenticator; random (not the user id) because authenticators store it.
        for record in keys:
            handle = record.data.get("user_handle")
            if isinstance(handle, str):
                return decode_b64(handle)
        return new_user_handle()

    def _put(self, ceremony: str, user_id: str, state: dict[str, Any]) -> str:
        key = f"{_KEY_PREFIX}{ceremony}:{secrets.token_urlsafe(24)}"
        self.ctx.store.put_challenge(
            key, {**state, "user_id": user_id}, ttl=self.ctx.config.webauthn.challenge_ttl
        )
        return key

    def _take(self, key: object, ceremony: str, user_id: str) -> dict[str, Any]:
        """The challenge, deleted atomically; only for its ceremony and its user."""
        if not isinstance(key, str) or not key.startswith(f"{_KEY_PREFIX}{ceremony}:"):
            raise ChallengeExpired("no WebAuthn challenge in this session")
        state = self.ctx.store.take_challenge(key)
        if state is None or state.get("user_id") != user_id:
            raise ChallengeExpired("the WebAuthn challenge expired or was used")
        return state

    # -- registration -------------------------------------------------------------------------

    def register_begin(self, user: DirectoryUser) -> tuple[dict[str, Any], str]:
        """``(options, challenge_key)``: keep the key in the session, send the options."""
        keys = self.keys(user.id)
        if len(keys) >= self.limit:
            raise LimitReached(self.kind.value, self.limit)
        options, state = self.method.register_begin(
            user_handle=self._user_handle(keys),
            user_name=user.email or user.id,
            display_name=user.display_name or user.id,
            exclude=[decode_b64(k.lookup) for k in keys if k.lookup],
            now=self.ctx.clock.now(),
        )
        return options, self._put(REGISTER, user.id, state)

    def discard(self, challenge_key: object) -> None:
        """Drop a challenge that will not be used (a new one replaces it)."""
        if isinstance(challenge_key, str) and challenge_key.startswith(_KEY_PREFIX):
            self.ctx.store.take_challenge(challenge_key)

    def register_complete(
        self, user_id: str, challenge_key: object, response: object, *, label: str, ip: str | None
    ) -> MethodRecord:
        """Verify the browser's answer and store the key; the challenge is used up either way."""
        ctx = self.ctx
        label = clean_label(label)
        state = self._take(challenge_key, REGISTER, user_id)
        try:
            cred = self.method.register_complete(state, response, now=ctx.clock.now())
        except MethodError as exc:
            self._audit_failure("method.add_failed", user_id, exc, ip)
            raise
        method_id = secrets.token_urlsafe(12)
        record = MethodRecord(
            id=method_id,
            user_id=user_id,
            kind=self.kind,
            label=label,
            created_at=ctx.clock.now(),
            data={
                "credential_data": b64(cred.credential_data),
                "user_handle": str(state["user_handle"]),
                "aaguid": cred.aaguid,
                "alg": cred.alg,
                "backup_eligible": cred.backup_eligible,
                "fmt": cred.fmt,
            },
            counter=cred.counter,
            lookup=b64(cred.credential_id),
        )
        events, notice = ctx.method_change(
            "method.added", Change.ADDED, record, ip=ip,
            aaguid=cred.aaguid, backup_eligible=cred.backup_eligible,
        )  # fmt: skip
        try:
            ctx.store.add_method(record, limit=self.limit, events=events)
        except InvalidInput as exc:
            # The store's unique lookup: this credential id is already registered (to anyone).
            self._audit_failure("method.add_failed", user_id, VerificationFailed("duplicate"), ip)
            raise InvalidInput("credential", "This security key is already registered.") from exc
        notice.send()
        return record

    # -- verification (MfaVerifier) -----------------------------------------------------------

    def start(
        self, user: DirectoryUser, record: MethodRecord, state: dict[str, Any], *, ip: str | None
    ) -> dict[str, Any]:
        """Options for ``navigator.credentials.get`` allowing any of the user's keys."""
        self.discard(state.get(STATE_KEY))
        keys = self.keys(user.id)
        options, ceremony_state = self.method.authenticate_begin(
            user_handle=self._user_handle(keys),
            credential_ids=[decode_b64(k.lookup) for k in keys if k.lookup],
            now=self.ctx.clock.now(),
        )
        state[STATE_KEY] = self._put("authenticate", user.id, ceremony_state)
        return options

    def verify(
        self,
        user: DirectoryUser,
        record: MethodRecord,
        response: Mapping[str, Any],
        state: dict[str, Any],
        *,
        ip: str | None,
    ) -> tuple[str, ...]:
        # Whatever happens, this challenge is spent: the page offers a new start.
        key = state.pop(STATE_KEY, None)
        state.pop("started", None)
        state.pop("page", None)
        return self.verify_assertion(user.id, key, response.get("credential"), ip=ip)

    def verify_assertion(
        self, user_id: str, challenge_key: object, response: object, *, ip: str | None
    ) -> tuple[str, ...]:
        """Check an assertion against the user's own keys; returns the amr values."""
        ctx = self.ctx
        ctx.throttle.attempt(user_id, ip)
        keys = {decode_b64(k.lookup): k for k in self.keys(user_id) if k.lookup}
        try:
            state = self._take(challenge_key, "authenticate", user_id)
            assertion = self.method.authenticate_complete(
                state,
                {
                    cid: (decode_b64(k.data["credential_data"]), bool(k.data["backup_eligible"]))
                    for cid, k in keys.items()
                },
                response,
                now=ctx.clock.now(),
            )
            used = keys[assertion.credential_id]
            success = ctx.event(
                "mfa.succeeded", user_id, "success", ip=ip, kind=self.kind.value, method_id=used.id
            )
            self._advance(user_id, used, assertion.counter, ip, success)
        except MethodError as exc:
            ctx.throttle.failed(user_id, ip)
            self._audit_failure("mfa.failed", user_id, exc, ip)
            raise
        ctx.throttle.succeeded(user_id)
        return assertion.amr(backup_eligible=bool(used.data["backup_eligible"]))

    def _advance(
        self, user_id: str, record: MethodRecord, counter: int, ip: str | None, success: AuditEvent
    ) -> None:
        """Store the key's use with ``success``, in one write: the new sign counter, or for a
        key without one (most passkeys send 0 forever) its ``last_used_at`` alone."""
        store, now = self.ctx.store, self.ctx.clock.now()
        try:
            if check_counter(record.counter, counter):
                if not store.advance_counter(user_id, record.id, counter, now, events=[success]):
                    # A concurrent sign-in stored this counter value (or a later one) first.
                    raise CounterRegression(record.counter, counter)
            elif not store.record_use(user_id, record.id, now, events=[success]):
                raise VerificationFailed("removed")  # deleted or reported since it was read
        except CounterRegression as exc:
            self.ctx.audit(
                "webauthn.counter_regression",
                user_id,
                "blocked",
                ip=ip,
                method_id=record.id,
                stored=exc.stored,
                received=exc.received,
            )
            raise

    def _audit_failure(self, event: str, user_id: str, exc: Exception, ip: str | None) -> None:
        if isinstance(exc, VerificationFailed):
            reason = exc.reason
        elif isinstance(exc, InvalidInput):
            reason = "malformed"
        elif isinstance(exc, ChallengeExpired):
            reason = "challenge"
        else:
            reason = type(exc).__name__
        self.ctx.audit(event, user_id, "failure", ip=ip, kind=self.kind.value, reason=reason)
