"""Hardware OATH tokens over the store: admin import, user activation, MFA codes, HOTP resync.

A token's record carries its serial as the store's globally unique ``lookup`` (``oath:<serial>``),
its parameters in ``data`` (not secret), the seed encrypted in ``secret`` and the counter (last
TOTP step used, or the next HOTP counter) in ``counter``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..config.hardware_oath import HardwareOathConfig
from ..exceptions import InvalidInput, LimitReached
from ..methods.hardware_oath import HardwareOathMethod, OathParams
from ..methods.kinds import METHOD_RULES, MethodKind
from ..methods.token_import import (
    ImportedToken,
    ImportProblem,
    ImportReport,
    parse_csv,
    parse_pskc,
)
from ..notify import Change, PendingNotice, withdraw_notice
from ..store.base import MethodRecord
from .base import CodeVerifier, ServiceContext, secret_context

__all__ = ["HardwareOathService", "ImportResult"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportResult:
    """What ``import_tokens`` did: every problem, or the serials imported (never both)."""

    imported: tuple[str, ...] = ()
    problems: tuple[ImportProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def lookup_for(serial: str) -> str:
    return f"oath:{serial}"


class HardwareOathService(CodeVerifier):
    kind = MethodKind.HARDWARE_OATH

    def __init__(self, ctx: ServiceContext, config: HardwareOathConfig | None = None) -> None:
        self.ctx = ctx
        self.config = config or ctx.config.hardware_oath
        self.method = HardwareOathMethod(
            hotp_window=self.config.hotp_window,
            resync_window=self.config.resync_window,
            totp_drift_steps=self.config.totp_drift_steps,
        )

    # -- admin import -------------------------------------------------------------------------

    def import_file(
        self,
        *,
        csv_text: str | None = None,
        pskc_data: bytes | None = None,
        key: bytes | None = None,
        default_user: str | None = None,
        actor: str = "admin",
    ) -> ImportResult:
        """Parse a CSV text or a PSKC document and import it, all or nothing."""
        bits = self.config.min_secret_bits
        if (csv_text is None) == (pskc_data is None):
            raise ValueError("give exactly one of csv_text and pskc_data")
        if csv_text is not None:
            report = parse_csv(csv_text, min_secret_bits=bits)
        else:
            assert pskc_data is not None
            report = parse_pskc(pskc_data, key=key, min_secret_bits=bits)
        return self.import_tokens(report, default_user=default_user, actor=actor)

    def import_tokens(
        self,
        report: ImportReport | Sequence[ImportedToken],
        *,
        default_user: str | None = None,
        actor: str = "admin",
    ) -> ImportResult:
        """Import every token or none: all problems are found before anything is stored."""
        if isinstance(report, ImportReport):
            if not report.ok:
                return ImportResult(problems=report.problems)
            tokens: Sequence[ImportedToken] = report.tokens
        else:
            tokens = report
        problems = [p for t in tokens if (p := self._problem(t, default_user)) is not None]
        if problems:
            return ImportResult(problems=tuple(problems))
        added: list[tuple[MethodRecord, PendingNotice]] = []
        for token in tokens:
            try:
                added.append(self._add(token, default_user, actor))
            except (LimitReached, InvalidInput) as exc:
                # A concurrent import took a serial (or filled the user) after our checks:
                # undo what this import stored, so it stays all or nothing (and its owners'
                # notices are withdrawn with it: the tokens never were theirs).
                now = self.ctx.clock.now()
                for record, notice in added:
                    self.ctx.store.delete_method(
                        record.user_id,
                        record.id,
                        events=withdraw_notice(notice, at=now, reason="import undone"),
                    )
                problem = ImportProblem(source=token.source, message=f"not stored: {exc}")
                return ImportResult(problems=(problem,))
        # Each owner learns that a token now signs in as them (it works before its activation).
        for _, notice in added:
            notice.send()
        return ImportResult(imported=tuple(t.serial for t in tokens))

    def _problem(self, token: ImportedToken, default_user: str | None) -> ImportProblem | None:
        user = token.user or default_user
        if not user:
            return ImportProblem(source=token.source, message="no user to assign the token to")
        directory = self.ctx.directory
        if directory is not None and directory.get_user(user) is None:
            return ImportProblem(source=token.source, message=f"unknown user {user!r}")
        holder = self.ctx.store.find_method_by_lookup(lookup_for(token.serial))
        if holder is not None:
            whose = "this user" if holder.user_id == user else "another user"
            message = f"serial {token.serial} is already assigned to {whose}"
            return ImportProblem(source=token.source, message=message)
        return None

    def _add(
        self, token: ImportedToken, default_user: str | None, actor: str
    ) -> tuple[MethodRecord, PendingNotice]:
        ctx = self.ctx
        user_id = token.user or default_user
        assert user_id is not None
        method_id = secrets.token_urlsafe(12)
        # Make, model and serial; never the kind's English name, which would stay English inside
        # every other language (the pages show the translated name beside the label).
        label = " ".join(p for p in (token.manufacturer, token.model, token.serial) if p)
        record = MethodRecord(
            id=method_id,
            user_id=user_id,
            kind=self.kind,
            label=label,
            created_at=ctx.clock.now(),
            data={
                "serial": token.serial,
                "manufacturer": token.manufacturer,
                "model": token.model,
                "activated": False,
                **token.params.to_dict(),
            },
            secret=ctx.box.encrypt(token.secret, context=secret_context(user_id, method_id)),
            counter=token.counter,
            lookup=lookup_for(token.serial),
        )
        events, notice = ctx.method_change(
            "method.imported", Change.ADDED, record, ip=None, detail=token.serial,
            serial=token.serial, actor=actor,
        )  # fmt: skip
        ctx.store.add_method(record, limit=METHOD_RULES[self.kind].per_user, events=events)
        return record, notice

    # -- the user's tokens --------------------------------------------------------------------

    def tokens(self, user_id: str) -> list[MethodRecord]:
        return [m for m in self.ctx.store.list_methods(user_id) if m.kind is self.kind]

    def activate(
        self, user_id: str, method_id: str, code: object, *, ip: str | None
    ) -> MethodRecord:
        """The user proves they hold an assigned token by typing its current code."""
        record = self._own(user_id, method_id)
        self.verify_code(user_id, record, code, ip=ip)
        return self.ctx.store.get_method(user_id, method_id) or record

    def resync(
        self, user_id: str, method_id: str, first: object, second: object, *, ip: str | None
    ) -> None:
        """HOTP: two consecutive codes ahead of the window move the counter past them; checked
        like any code (throttled, replay-proof, the counter and its audit event one write)."""
        record = self._own(user_id, method_id)
        box, params = self.ctx.box, OathParams.from_dict(record.data)

        def match(now: float) -> int:
            secret = box.decrypt(record.secret, context=secret_context(user_id, record.id))
            return self.method.resync(secret, params, first, second, counter=record.counter)

        events = ("method.resynced", "method.resync_failed")
        self.ctx.check_code(user_id, record, match, ip=ip, events=events)

    def _own(self, user_id: str, method_id: str) -> MethodRecord:
        record = self.ctx.store.get_method(user_id, method_id)
        if record is None or record.kind is not self.kind:
            raise InvalidInput("method_id", "no such token")
        return record

    # -- verification (MfaVerifier) -----------------------------------------------------------

    # ``start``/``verify`` come from CodeVerifier: amr ``otp`` only, not ``hwk`` (this codebase
    # reads ``hwk`` as phishing-resistant, and an OTP is not; docs/methods/hardware-oath.md).

    def verify_code(
        self, user_id: str, record: MethodRecord, code: object, *, ip: str | None
    ) -> int:
        """Throttled and replay-proof; a first success activates the token (audited)."""
        box, params = self.ctx.box, OathParams.from_dict(record.data)

        def match(now: float) -> int:
            secret = box.decrypt(record.secret, context=secret_context(user_id, record.id))
            return self.method.authenticate_complete(
                secret, params, code, counter=record.counter, now=now
            )

        counter = self.ctx.check_code(user_id, record, match, ip=ip)
        if not record.data.get("activated"):
            self._mark_activated(record, ip=ip)
        return counter

    def _mark_activated(self, record: MethodRecord, *, ip: str | None) -> None:
        ctx = self.ctx
        fresh = ctx.store.get_method(record.user_id, record.id) or record
        event = ctx.event(
            "method.activated",
            record.user_id,
            "success",
            ip=ip,
            kind=self.kind.value,
            method_id=record.id,
        )
        ctx.store.update_method(
            replace(fresh, data={**fresh.data, "activated": True}), events=[event]
        )
