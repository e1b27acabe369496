"""Reading hardware OATH token files: Entra-style CSV and PSKC (RFC 6030). Pure: bytes in, report out.

Both readers return an :class:`ImportReport`: the tokens read and a problem per line or key that is
wrong. The caller imports nothing unless the report has no problem (all or nothing).

PSKC is parsed by python-pskc (plain values, and pre-shared-key AES-CBC encryption with the
HMAC-SHA1 ``ValueMAC`` of RFC 6030 section 6.1). With lxml absent it parses through defusedxml,
which refuses entity declarations (no billion laughs, no external entities).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..exceptions import InvalidInput
from .hardware_oath import OathHash, OathKind, OathParams

__all__ = [
    "CSV_COLUMNS",
    "ImportProblem",
    "ImportReport",
    "ImportedToken",
    "parse_csv",
    "parse_pskc",
]

#: Entra ID's hardware token CSV header
CSV_COLUMNS = ("upn", "serial number", "secret key", "time interval", "manufacturer", "model")
_PSKC_ALGORITHMS = {
    "urn:ietf:params:xml:ns:keyprov:pskc:hotp": OathKind.HOTP,
    "urn:ietf:params:xml:ns:keyprov:pskc#hotp": OathKind.HOTP,
    "urn:ietf:params:xml:ns:keyprov:pskc:totp": OathKind.TOTP,
    "urn:ietf:params:xml:ns:keyprov:pskc#totp": OathKind.TOTP,
}
_SUITES = {
    "hmac-sha1": OathHash.SHA1,
    "hmac-sha256": OathHash.SHA256,
    "hmac-sha512": OathHash.SHA512,
}
_MAX_SERIAL = 64


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportedToken:
    #: where it came from: ``line 3`` or ``key 2``
    source: str
    serial: str
    secret: bytes
    params: OathParams
    #: the user it is assigned to (None: the file does not say)
    user: str | None = None
    #: HOTP: the next counter value; TOTP: 0
    counter: int = 0
    manufacturer: str = ""
    model: str = ""

    def __repr__(self) -> str:  # never the secret
        return f"ImportedToken(source={self.source!r}, serial={self.serial!r}, user={self.user!r})"


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportProblem:
    source: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportReport:
    tokens: tuple[ImportedToken, ...] = ()
    problems: tuple[ImportProblem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_secret(secret: bytes, min_bits: int) -> str | None:
    if len(secret) * 8 < min_bits:
        return f"the secret has {len(secret) * 8} bits, at least {min_bits} are required"
    return None


def _check_serial(serial: str) -> str | None:
    if not serial or len(serial) > _MAX_SERIAL or not serial.isprintable():
        return f"expected a serial number of 1 to {_MAX_SERIAL} printable characters"
    return None


def _duplicates(tokens: Iterable[ImportedToken]) -> list[ImportProblem]:
    seen: dict[str, str] = {}
    problems = []
    for t in tokens:
        if t.serial in seen:
            problems.append(
                ImportProblem(
                    source=t.source, message=f"serial {t.serial} repeats {seen[t.serial]}"
                )
            )
        seen.setdefault(t.serial, t.source)
    return problems


# -- CSV ------------------------------------------------------------------------------------------


def _b32(text: str) -> bytes:
    cleaned = text.replace(" ", "").upper()
    try:
        return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError):
        raise InvalidInput("secret key", "is not base32") from None


def _csv_row(row: dict[str, str], source: str, min_bits: int) -> ImportedToken:
    upn, serial = row["upn"].strip(), row["serial number"].strip()
    if not upn:
        raise InvalidInput("upn", "is empty")
    if problem := _check_serial(serial):
        raise InvalidInput("serial number", problem)
    secret = _b32(row["secret key"])
    if problem := _check_secret(secret, min_bits):
        raise InvalidInput("secret key", problem)
    interval = row["time interval"].strip()
    if interval not in ("30", "60"):
        raise InvalidInput("time interval", f"expected 30 or 60, got {interval[:10]!r}")
    return ImportedToken(
        source=source,
        serial=serial,
        secret=secret,
        params=OathParams(kind=OathKind.TOTP, period=int(interval)),
        user=upn,
        manufacturer=row["manufacturer"].strip()[:64],
        model=row["model"].strip()[:64],
    )


def parse_csv(text: str, *, min_secret_bits: int = 128) -> ImportReport:
    """Read Entra's CSV (``upn,serial number,secret key,time interval,manufacturer,model``)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = tuple((h or "").strip().lower() for h in reader.fieldnames or ())
    if header != CSV_COLUMNS:
        expected = ",".join(CSV_COLUMNS)
        return ImportReport(
            problems=(ImportProblem(source="line 1", message=f"expected {expected}"),)
        )
    reader.fieldnames = list(CSV_COLUMNS)
    tokens, problems = [], []
    for row in reader:
        source = f"line {reader.line_num}"
        if None in row or any(v is None for v in row.values()):
            problems.append(ImportProblem(source=source, message="expected 6 columns"))
            continue
        try:
            tokens.append(_csv_row(row, source, min_secret_bits))
        except InvalidInput as exc:
            problems.append(ImportProblem(source=source, message=f"{exc.field}: {exc.message}"))
    if not tokens and not problems:
        problems.append(ImportProblem(source="line 2", message="no tokens in the file"))
    problems += _duplicates(tokens)
    return ImportReport(tokens=tuple(tokens), problems=tuple(problems))


# -- PSKC -----------------------------------------------------------------------------------------


def _pskc_params(key: object, kind: OathKind) -> OathParams:
    encoding = getattr(key, "response_encoding", None)
    if encoding not in (None, "DECIMAL"):
        raise InvalidInput("ResponseFormat", f"expected DECIMAL codes, got {encoding!r}")
    suite = (getattr(key, "algorithm_suite", None) or "hmac-sha1").strip().lower()
    if suite not in _SUITES:
        raise InvalidInput("Suite", f"unsupported algorithm suite {suite!r}")
    return OathParams(
        kind=kind,
        digits=getattr(key, "response_length", None) or 6,
        period=getattr(key, "time_interval", None) or 30,
        hash=_SUITES[suite],
    )


def _pskc_secret(key: object, min_bits: int) -> bytes:
    from pskc.exceptions import PSKCError
    from pskc.key import EncryptedValue

    stored = getattr(key, "_secret", None)  # python-pskc keeps the undecrypted value here
    if isinstance(stored, EncryptedValue) and not stored.mac_value:
        # python-pskc skips the MAC check when there is no ValueMAC: RFC 6030 requires one.
        raise InvalidInput("Secret", "an encrypted secret without ValueMAC")
    try:
        secret = getattr(key, "secret", None)
    except PSKCError as exc:
        raise InvalidInput("Secret", f"cannot decrypt ({exc}): wrong key or altered file") from None
    if not secret:
        raise InvalidInput("Secret", "missing")
    if problem := _check_secret(secret, min_bits):
        raise InvalidInput("Secret", problem)
    return bytes(secret)


def _pskc_key(key: object, source: str, min_bits: int) -> ImportedToken:
    algorithm = getattr(key, "algorithm", None) or ""
    kind = _PSKC_ALGORITHMS.get(algorithm)
    if kind is None:
        raise InvalidInput("Algorithm", f"unsupported algorithm {algorithm!r}")
    serial = str(getattr(key, "serial", None) or "").strip()
    if problem := _check_serial(serial):
        raise InvalidInput("SerialNo", problem)
    secret = _pskc_secret(key, min_bits)
    params = _pskc_params(key, kind)
    counter = (getattr(key, "counter", None) or 0) if kind is OathKind.HOTP else 0
    user = getattr(key, "key_userid", None) or getattr(key, "device_userid", None)
    return ImportedToken(
        source=source,
        serial=serial,
        secret=secret,
        params=params,
        user=(str(user).strip() or None) if user else None,
        counter=int(counter),
        manufacturer=str(getattr(key, "manufacturer", None) or "")[:64],
        model=str(getattr(key, "model", None) or "")[:64],
    )


def parse_pskc(
    data: bytes, *, key: bytes | None = None, min_secret_bits: int = 128
) -> ImportReport:
    """Read a PSKC document; ``key`` is the pre-shared AES key when its secrets are encrypted.
    Raises :class:`~oidc_combinedreg.extras.MissingExtra` without the [pskc] extra."""
    from ..extras import require_extra

    require_extra("pskc", "importing PSKC files")
    import pskc
    from pskc.exceptions import PSKCError

    try:
        container = pskc.PSKC(io.BytesIO(data))
    except PSKCError as exc:
        return ImportReport(problems=(ImportProblem(source="document", message=str(exc)),))
    if container.encryption.is_encrypted:
        if key is None:
            problem = ImportProblem(
                source="document", message="the secrets are encrypted: give the key"
            )
            return ImportReport(problems=(problem,))
        container.encryption.key = key
    tokens, problems = [], []
    for i, k in enumerate(container.keys, start=1):
        source = f"key {i}" + (f" (serial {k.serial})" if k.serial else "")
        try:
            tokens.append(_pskc_key(k, source, min_secret_bits))
        except InvalidInput as exc:
            problems.append(ImportProblem(source=source, message=f"{exc.field}: {exc.message}"))
        except (PSKCError, ValueError, TypeError) as exc:
            problems.append(ImportProblem(source=source, message=f"unreadable: {exc}"))
    if not tokens and not problems:
        problems.append(ImportProblem(source="document", message="no keys in the document"))
    problems += _duplicates(tokens)
    return ImportReport(tokens=tuple(tokens), problems=tuple(problems))
