"""The security-info service: what a user has registered, and the operations on it. No web imports.

The web layer calls this; it calls the method services (one module per method kind, each over the
pure method module), the store, the throttle and the crypto box. Every change writes its audit
event in the same store transaction as the change itself.

Adding a method kind: write ``service/<kind>.py`` (registration calls of its own, plus the
:class:`~oidc_combinedreg.service.base.MfaVerifier` calls if it serves MFA) and register it in
:meth:`SecurityInfo._build_verifiers`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..clock import Clock
from ..config.model import Config
from ..crypto import CodeHasher, SecretBox
from ..delivery.base import Delivery
from ..delivery.config import build_delivery
from ..directory import Directory
from ..exceptions import MethodsChanged, StoreUnavailable
from ..methods.kinds import METHOD_RULES, MethodKind
from ..methods.names import NAMEABLE, clean_name
from ..notify import Change, Notifier, PendingNotice
from ..policy.compliance import ReplaceFirst, Shortfall, UserFacts, delete_shortfalls
from ..store.base import AuditEvent, MethodRecord, Store, UserState
from ..throttle import Throttle
from .app_passwords import AppPasswordService
from .base import MfaVerifier, ServiceContext
from .email import EmailService
from .hardware_oath import HardwareOathService
from .phone import OFFICE_PHONE_ID, PhoneService
from .push import PushService
from .questions import QuestionsService
from .totp import TotpService
from .webauthn import WebAuthnService

__all__ = ["MfaVerifier", "SecurityInfo", "ServiceContext"]


#: checks a delete makes before giving up when every try finds the methods changed meanwhile
_DELETE_TRIES = 5


class SecurityInfo:
    """The facade the web layer uses: reading, per-method services, generic changes."""

    def __init__(
        self,
        *,
        config: Config,
        store: Store,
        clock: Clock,
        directory: Directory | None = None,
        delivery: Delivery | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        #: email, text and voice providers (from the config unless the host passes its own)
        self.delivery = delivery if delivery is not None else build_delivery(config.delivery)
        self.notifier = Notifier(
            config=config, store=store, clock=clock, directory=directory, email=self.delivery.email
        )
        self.ctx = ServiceContext(
            config=config,
            store=store,
            clock=clock,
            box=SecretBox(config.secrets.encryption_keys),
            codes=CodeHasher(config.secrets.code_pepper),
            throttle=Throttle(store, config.throttle),
            directory=directory,
            notifier=self.notifier,
        )
        self.totp = TotpService(self.ctx)
        self.push = PushService(self.ctx)
        self.hardware_oath = HardwareOathService(self.ctx)
        self.mobile_phone = PhoneService(self.ctx, self.delivery, MethodKind.MOBILE_PHONE)
        self.alternate_phone = PhoneService(self.ctx, self.delivery, MethodKind.ALTERNATE_PHONE)
        self.office_phone = PhoneService(self.ctx, self.delivery, MethodKind.OFFICE_PHONE)
        self.email = EmailService(self.ctx, self.delivery)
        self.questions = QuestionsService(self.ctx)
        self.webauthn = WebAuthnService(self.ctx)
        self.app_passwords = AppPasswordService(self.ctx)
        self.verifiers: dict[MethodKind, MfaVerifier] = self._build_verifiers()

    def _build_verifiers(self) -> dict[MethodKind, MfaVerifier]:
        return {
            MethodKind.TOTP: self.totp,
            MethodKind.WEBAUTHN: self.webauthn,
            MethodKind.PUSH: self.push,
            MethodKind.HARDWARE_OATH: self.hardware_oath,
            MethodKind.MOBILE_PHONE: self.mobile_phone,
            MethodKind.ALTERNATE_PHONE: self.alternate_phone,
            MethodKind.OFFICE_PHONE: self.office_phone,
        }

    # -- reading ------------------------------------------------------------------------------

    def available_kinds(self) -> frozenset[MethodKind]:
        """The kinds this deployment can serve: phones and email need a delivery provider."""
        d = self.delivery
        kinds = {
            MethodKind.TOTP,
            MethodKind.PUSH,
            MethodKind.HARDWARE_OATH,
            MethodKind.SECURITY_QUESTIONS,
            MethodKind.WEBAUTHN,
            MethodKind.APP_PASSWORD,
        }
        if d.text is not None or d.voice is not None:
            kinds.add(MethodKind.MOBILE_PHONE)
        if d.voice is not None:
            kinds |= {MethodKind.ALTERNATE_PHONE, MethodKind.OFFICE_PHONE}
        if d.email is not None:
            kinds.add(MethodKind.EMAIL)
        return frozenset(kinds)

    def methods(self, user_id: str, stored: list[MethodRecord] | None = None) -> list[MethodRecord]:
        """Stored methods, plus the Directory's office phone as a read-only synthetic record.
        ``stored``: the user's stored methods, if the caller has just read them."""
        office = self.office_phone.directory_record(user_id)
        if stored is None:
            stored = self.store.list_methods(user_id)
        return [*stored, *([office] if office else [])]

    def mfa_methods(self, user_id: str) -> list[MethodRecord]:
        return [m for m in self.methods(user_id) if METHOD_RULES[m.kind].mfa]

    def mfa_method(self, user_id: str, method_id: str) -> MethodRecord | None:
        """One of the user's methods by id, if it can answer an MFA step here (else None).

        The same answer as picking it from :meth:`mfa_methods` (and :attr:`verifiers`), with one
        read instead of the whole list: the MFA step's POST names its method.
        """
        if not method_id:
            return None
        if method_id == OFFICE_PHONE_ID:
            record = self.office_phone.directory_record(user_id)
        else:
            record = self.store.get_method(user_id, method_id)
        if record is None or not METHOD_RULES[record.kind].mfa or record.kind not in self.verifiers:
            return None
        return record

    def state(self, user_id: str) -> UserState:
        return self.store.get_user_state(user_id)

    def default_method(self, user_id: str, methods: list[MethodRecord]) -> MethodRecord | None:
        """The user's default MFA method, or the most secure one when none is set."""
        mfa = [m for m in methods if METHOD_RULES[m.kind].mfa]
        default_id = self.store.get_user_state(user_id).default_method_id
        for m in mfa:
            if m.id == default_id:
                return m
        return min(mfa, key=lambda m: METHOD_RULES[m.kind].rank, default=None)

    # -- audit --------------------------------------------------------------------------------

    def event(
        self, event: str, user_id: str | None, outcome: str, *, ip: str | None = None, **detail: Any
    ) -> AuditEvent:
        return self.ctx.event(event, user_id, outcome, ip=ip, **detail)

    def audit(
        self, event: str, user_id: str | None, outcome: str, *, ip: str | None = None, **detail: Any
    ) -> None:
        self.ctx.audit(event, user_id, outcome, ip=ip, **detail)

    # -- generic changes ----------------------------------------------------------------------

    def delete_shortfalls(
        self, user_id: str, method_id: str, stored: list[MethodRecord] | None = None
    ) -> tuple[Shortfall, ...]:
        """What deleting this method would break (replace before remove); empty: allowed.
        ``stored``: the user's stored methods, if the caller has just read them."""
        user = self.ctx.directory.get_user(user_id) if self.ctx.directory else None
        facts = UserFacts(user_id=user_id)
        if user is not None:
            facts = UserFacts(user_id=user_id, groups=user.groups, per_user_mfa=user.per_user_mfa)
        return delete_shortfalls(
            self.methods(user_id, stored), method_id, facts, self.config.policies
        )

    def delete_method(self, user_id: str, method_id: str, *, ip: str | None) -> bool:
        """Delete one of the user's methods; False if it is not theirs or not deletable.

        Raises :class:`~oidc_combinedreg.policy.compliance.ReplaceFirst` when the delete would
        leave the user out of compliance with a policy that applies to them.

        Of two parallel deletes that each leave the other method enough, one goes through and
        the other is refused: the delete happens only if the user's methods are still the ones
        the check read (``if_methods``, atomic in the store), else the check runs again. Where
        the store serializes a transaction (SQLite, the memory store) the second check already
        sees the first delete; on Redis the store's compare does it.
        """
        for _ in range(_DELETE_TRIES):
            try:
                return self._delete_if_allowed(user_id, method_id, ip=ip)
            except MethodsChanged:
                continue  # another change came between the check and the delete: check again
        raise StoreUnavailable(
            f"the methods of {user_id!r} kept changing during a delete; try again"
        )

    def _delete_if_allowed(self, user_id: str, method_id: str, *, ip: str | None) -> bool:
        with self.store.transaction():
            stored = self.store.list_methods(user_id)
            record = next((m for m in stored if m.id == method_id), None)
            if record is None or not METHOD_RULES[record.kind].deletable:
                return False
            shortfalls = self.delete_shortfalls(user_id, method_id, stored)
            if shortfalls:
                raise ReplaceFirst(shortfalls)
            events, notice = self.deletion(record, ip=ip)
            deleted = self.store.delete_method(
                user_id, method_id, events=events, if_methods=[m.id for m in stored]
            )
        if deleted:
            notice.send()
        return deleted

    def deletion(
        self, record: MethodRecord, *, ip: str | None, **detail: Any
    ) -> tuple[list[AuditEvent], PendingNotice]:
        """What a delete of ``record`` writes with it (its ``method.deleted`` event, with
        ``detail``, and the owner's notice), and the notice to send once it is done."""
        old_email = record.data.get("email") if record.kind is MethodKind.EMAIL else None
        return self.ctx.method_change(
            "method.deleted",
            Change.DELETED,
            record,
            ip=ip,
            old_email=old_email if isinstance(old_email, str) else None,
            **detail,
        )

    # -- reported methods ("This wasn't me", SECURITY.md case 59) ---------------------------

    def reported_methods(self, user_id: str) -> list[MethodRecord]:
        """Methods suspended by the user's "This wasn't me": they count for nothing until the
        user deletes them or an admin restores them."""
        return self.store.list_reported_methods(user_id)

    def delete_reported(
        self, user_id: str, method_id: str, *, ip: str | None, **detail: Any
    ) -> bool:
        """Delete one of the user's reported methods (no replace-before-remove check: a
        reported method counts for no policy already); False if there is no such one."""
        record = next((m for m in self.reported_methods(user_id) if m.id == method_id), None)
        if record is None:
            return False
        events, notice = self.deletion(record, ip=ip, reported=True, **detail)
        deleted = self.store.delete_method(user_id, method_id, events=events)
        if deleted:
            notice.send()
        return deleted

    def restore_reported(
        self, user_id: str, method_id: str, *, actor: str, ip: str | None
    ) -> MethodRecord | None:
        """An admin takes a reported method back into use (it was the user's after all): audited
        (``method.restored``) and the user is told, with a "This wasn't me" link of its own.
        None if the user has no such reported method; ``LimitReached`` when the user has
        registered as many of its kind since (delete one first)."""
        record = next((m for m in self.reported_methods(user_id) if m.id == method_id), None)
        if record is None:
            return None
        restored = replace(record, reported_at=None)
        events, notice = self.ctx.method_change(
            "method.restored", Change.RESTORED, restored, ip=ip, actor=actor,
            reported_at=record.reported_at,
        )  # fmt: skip
        limit = METHOD_RULES[record.kind].per_user
        if not self.store.restore_method(user_id, method_id, limit=limit, events=events):
            return None
        notice.send()
        return restored

    def set_default(self, user_id: str, method_id: str, *, ip: str | None) -> bool:
        record = self.store.get_method(user_id, method_id)
        if record is None or not METHOD_RULES[record.kind].mfa:
            return False
        state = self.store.get_user_state(user_id)
        self.store.put_user_state(
            replace(state, default_method_id=method_id),
            events=[
                self.event("method.default_changed", user_id, "success", ip=ip, method_id=method_id)
            ],
        )
        return True

    def rename_method(self, user_id: str, method_id: str, name: object, *, ip: str | None) -> bool:
        """Give one of the user's methods a name of their own (issue 19.6; the kinds that have
        one: methods/names.py). Raises InvalidInput for a name that can't be stored; False if
        the user has no such method, or it is of a kind named otherwise (a phone, by its number).
        Audited ``method.renamed`` with the change; the owner gets the usual change notice."""
        record = self.store.get_method(user_id, method_id)
        if record is None or record.kind not in NAMEABLE:
            return False
        new = replace(record, label=clean_name(name))
        events, notice = self.ctx.method_change("method.renamed", Change.CHANGED, new, ip=ip)
        renamed = self.store.update_method(new, events=events)
        if renamed:
            notice.send()
        return renamed

    def record_confirmed(self, user_id: str) -> None:
        state = self.store.get_user_state(user_id)
        self.store.put_user_state(replace(state, confirmed_at=self.clock.now(), reregister=False))
