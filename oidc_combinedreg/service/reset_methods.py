"""Starting and checking the password reset's methods: send an email, text or call code, ask the
security questions, check a code from any of the user's apps, and record a passed method's use.
Mixed into :class:`~oidc_combinedreg.service.reset.ResetService`, whose steps call these."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..exceptions import ChallengeExpired, CodeReused, InvalidInput, VerificationFailed
from ..methods.kinds import MethodKind
from ..methods.otp_codes import Purpose
from ..policy.reset import ResetChoice
from ..store.base import MethodRecord
from .email import EmailService
from .phone import PhoneService
from .questions import QuestionsService
from .reset_decoys import ResetDecoys
from .reset_flow import ResetFlow, answers

if TYPE_CHECKING:
    from ..clock import Clock
    from ..store.base import Store
    from .base import ServiceContext

#: the phone channel each phone choice sends on
_CHANNEL_OF_CHOICE: dict[ResetChoice, str] = {
    ResetChoice.MOBILE_TEXT: "sms",
    ResetChoice.MOBILE_CALL: "voice",
    ResetChoice.ALTERNATE_CALL: "voice",
    ResetChoice.OFFICE_CALL: "voice",
}


class ResetMethods(ResetDecoys):
    """The method half of :class:`~oidc_combinedreg.service.reset.ResetService` (mixed in,
    with the decoys a flow that cannot reset gets instead)."""

    ctx: ServiceContext
    store: Store
    clock: Clock
    email: EmailService
    phones: dict[MethodKind, PhoneService]
    #: the app-code services by kind (authenticator app, push app, hardware token)
    app_codes: dict[MethodKind, Any]

    #: the user's methods that can serve a choice now: ResetService's step 2, which reads the
    #: policy this half does not hold
    _candidates: Callable[[ResetFlow, ResetChoice], list[MethodRecord]]

    def _start_method(
        self,
        flow: ResetFlow,
        choice: ResetChoice,
        record: MethodRecord,
        *,
        ip: str | None,
        lang: str | None,
        previous: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        assert flow.user_id is not None
        uid = flow.user_id
        if choice is ResetChoice.EMAIL:
            _, state = self.email.send_reset_code(uid, record, ip=ip, state=previous, lang=lang)
            return state
        if choice in _CHANNEL_OF_CHOICE:
            service = self._phone(record.kind)
            _, state = service.send_code(
                uid,
                record,
                Purpose.RESET,
                channel=_CHANNEL_OF_CHOICE[choice],
                ip=ip,
                state=previous,
                lang=lang,
            )
            return state
        if choice is ResetChoice.QUESTIONS:
            _, state = self._questions().ask(uid, record)
            return state
        return {"app": True}

    def _check(self, flow: ResetFlow, fields: Mapping[str, Any], *, ip: str | None) -> MethodRecord:
        choice, state = flow.choice, flow.method
        if state.get("decoy") or flow.user_id is None or not flow.eligible:
            self._decoy_work(choice, fields)
            raise VerificationFailed("decoy")
        uid = flow.user_id
        if choice is ResetChoice.APP_CODE:
            return self._check_app_code(flow, fields.get("code"), ip=ip)
        record = self._record(flow, str(state.get("method_id")))
        if record is None:
            raise ChallengeExpired("the method is gone")
        if choice is ResetChoice.EMAIL:
            self.email.check_reset_code(uid, record, state, fields.get("code"), ip=ip)
        elif choice is ResetChoice.QUESTIONS:
            self._questions().check(uid, record, state, answers(fields), ip=ip)
        else:
            self._phone(record.kind).check_code(
                uid, record, state, fields.get("code"), Purpose.RESET, ip=ip
            )
        return record

    def _passed(self, flow: ResetFlow, record: MethodRecord, *, ip: str | None) -> None:
        """Audit the pass; for a method whose check stored nothing (an email code, questions),
        in the same write as its use (``last_used_at``): one gone or reported since it was read
        passes nothing. The others recorded their use as they checked (a counter moved)."""
        assert flow.choice is not None
        event = self.info.event(
            "reset.method_passed",
            flow.user_id,
            "success",
            ip=ip,
            choice=flow.choice.value,
            kind=record.kind.value,
            method_id=record.id,
        )
        if record.kind not in (MethodKind.EMAIL, MethodKind.SECURITY_QUESTIONS):
            self.store.append_audit(event)
        elif not self.store.record_use(record.user_id, record.id, self.clock.now(), events=[event]):
            raise ChallengeExpired("the method is gone")

    def _check_app_code(self, flow: ResetFlow, code: object, *, ip: str | None) -> MethodRecord:
        """A code from any of the user's apps or tokens (each checked, replay-proof)."""
        assert flow.user_id is not None
        user = self.info.ctx.directory.get_user(flow.user_id) if self.info.ctx.directory else None
        if user is None:
            raise VerificationFailed("no such user")
        failure: Exception = VerificationFailed("no app")
        for record in self._candidates(flow, ResetChoice.APP_CODE):
            try:
                self.app_codes[record.kind].verify(user, record, {"code": code}, {}, ip=ip)
                return record
            except (VerificationFailed, CodeReused, InvalidInput) as exc:
                failure = exc
        raise failure

    def _record(self, flow: ResetFlow, method_id: str) -> MethodRecord | None:
        if flow.user_id is None:
            return None
        for m in self.info.methods(flow.user_id):
            if m.id == method_id:
                return m
        return None

    def _phone(self, kind: MethodKind) -> PhoneService:
        if kind is MethodKind.OFFICE_PHONE:
            return PhoneService(self.ctx, self.info.delivery, kind)
        return self.phones[kind]

    def _questions(self) -> QuestionsService:
        # The facade's hasher (tests swap in a fast one); our context (our throttle).
        return QuestionsService(self.ctx, hasher=self.info.questions.hasher)
