"""Token files: Entra-style CSV and the PSKC examples of RFC 6030, good and broken."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from oidc_combinedreg.methods.hardware_oath import OathHash, OathKind, code_at
from oidc_combinedreg.methods.token_import import parse_csv, parse_pskc

DATA = Path(__file__).parent / "data"
PSK = bytes.fromhex("12345678901234567890123456789012")
HEADER = "upn,serial number,secret key,time interval,manufacturer,model\n"
B32_160 = base64.b32encode(b"12345678901234567890").decode()  # 160 bits
B32_80 = base64.b32encode(b"1234567890").decode()  # 80 bits


def _fig(n: int) -> bytes:
    return (DATA / f"rfc6030_figure{n}.pskcxml").read_bytes()


# -- PSKC -----------------------------------------------------------------------------------------


def test_figure_6_pre_shared_key_decrypts_to_the_rfc_secret() -> None:
    report = parse_pskc(_fig(6), key=PSK)
    assert report.ok, report.problems
    (token,) = report.tokens
    assert token.secret == b"12345678901234567890"
    assert (token.serial, token.manufacturer) == ("987654321", "Manufacturer")
    assert token.params.kind is OathKind.HOTP and token.params.digits == 8
    assert token.counter == 0


def test_figure_9_signed_container_gives_the_rfc4226_token() -> None:
    report = parse_pskc(_fig(9))
    assert report.ok, report.problems
    (token,) = report.tokens
    assert token.serial == "0755225266"
    assert code_at(token.secret, token.params, 0) == "755224"  # RFC 4226 appendix D


def test_figure_2_secret_is_too_short_to_import() -> None:
    report = parse_pskc(_fig(2))
    assert not report.ok and not report.tokens
    assert "SerialNo" in str(report.problems[0]) or "bits" in str(report.problems[0])


def _broken_fig6(old: str, new: str) -> bytes:
    text = _fig(6).decode()
    assert old in text
    return text.replace(old, new).encode()


@pytest.mark.parametrize(
    ("data", "key", "expected"),
    [
        pytest.param(
            _broken_fig6("Su+NvtQfmvfJzF6bmQiJqoLRExc=", "Tu+NvtQfmvfJzF6bmQiJqoLRExc="),
            PSK,
            "MAC",
            id="altered ValueMAC -> refused",
        ),
        pytest.param(
            _fig(6),
            bytes.fromhex("00" * 16),
            "cannot decrypt",
            id="wrong pre-shared key -> refused",
        ),
        pytest.param(_fig(6), None, "encrypted", id="encrypted without a key -> refused"),
        pytest.param(
            _broken_fig6("pskc:hotp", "pskc:ocra"),
            PSK,
            "unsupported algorithm",
            id="unknown algorithm",
        ),
        pytest.param(
            _broken_fig6(
                "<ValueMAC>Su+NvtQfmvfJzF6bmQiJqoLRExc=\n                    </ValueMAC>", ""
            ),
            PSK,
            "without ValueMAC",
            id="encrypted secret without a MAC -> refused",
        ),
        pytest.param(
            _fig(9).replace(b"MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=", b""),
            None,
            "missing",
            id="missing secret",
        ),
        pytest.param(b"<not xml", None, "parsing", id="not XML"),
        pytest.param(
            b'<!DOCTYPE x [<!ENTITY a "aaaa">]><KeyContainer '
            b'xmlns="urn:ietf:params:xml:ns:keyprov:pskc" Version="1.0">&a;</KeyContainer>',
            None,
            "pars",
            id="entity declarations are refused (defusedxml)",
        ),
    ],
)
def test_broken_pskc_documents_import_nothing(
    data: bytes, key: bytes | None, expected: str
) -> None:
    report = parse_pskc(data, key=key)
    assert not report.ok
    assert not report.tokens
    assert expected in " ".join(str(p) for p in report.problems)


def test_duplicate_serial_in_one_document_is_reported() -> None:
    text = _fig(9).decode()
    start, end = text.index("<KeyPackage>"), text.index("</KeyPackage>") + len("</KeyPackage>")
    doubled = text[:end] + text[start:end] + text[end:]
    report = parse_pskc(doubled.encode())
    assert not report.ok
    assert "repeats key 1" in str(report.problems[0])


def test_totp_pskc_key_with_sha256_suite_and_60_second_step() -> None:
    doc = f"""<?xml version="1.0"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">
  <KeyPackage>
    <DeviceInfo><Manufacturer>Acme</Manufacturer><SerialNo>T-1</SerialNo></DeviceInfo>
    <Key Id="1" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp">
      <AlgorithmParameters><Suite>HMAC-SHA256</Suite>
        <ResponseFormat Length="6" Encoding="DECIMAL"/></AlgorithmParameters>
      <Data>
        <Secret><PlainValue>{base64.b64encode(bytes(range(32))).decode()}</PlainValue></Secret>
        <TimeInterval><PlainValue>60</PlainValue></TimeInterval>
      </Data>
      <UserId>alice</UserId>
    </Key>
  </KeyPackage>
</KeyContainer>"""
    report = parse_pskc(doc.encode())
    assert report.ok, report.problems
    (token,) = report.tokens
    assert token.params.kind is OathKind.TOTP and token.params.period == 60
    assert token.params.hash is OathHash.SHA256 and token.user == "alice"


# -- CSV ------------------------------------------------------------------------------------------


def test_csv_in_entras_format_is_read() -> None:
    text = (
        HEADER
        + f"alice,1234,{B32_160},30,Contoso,Hardware Key\nbob,5678,{B32_160},60,Contoso,HK2\n"
    )
    report = parse_csv(text)
    assert report.ok, report.problems
    alice, bob = report.tokens
    assert (alice.user, alice.serial, alice.params.period) == ("alice", "1234", 30)
    assert (bob.user, bob.params.period, bob.model) == ("bob", 60, "HK2")
    assert alice.secret == b"12345678901234567890"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(f"alice,1,{B32_80},30,C,M", "80 bits", id="80-bit seed -> too short"),
        pytest.param("alice,1,not*base32,30,C,M", "base32", id="secret not base32"),
        pytest.param(f"alice,1,{B32_160},45,C,M", "30 or 60", id="time interval 45"),
        pytest.param(f",1,{B32_160},30,C,M", "upn", id="no user"),
        pytest.param(f"alice,,{B32_160},30,C,M", "serial", id="no serial"),
        pytest.param(f"alice,1,{B32_160},30", "6 columns", id="missing columns"),
    ],
)
def test_each_wrong_csv_line_is_reported_and_nothing_is_read(line: str, expected: str) -> None:
    good = f"bob,9,{B32_160},30,C,M\n"
    report = parse_csv(HEADER + good + line + "\n")
    assert not report.ok
    (problem,) = report.problems
    assert problem.source == "line 3" and expected in problem.message


def test_csv_with_a_wrong_header_is_refused() -> None:
    report = parse_csv("user,serial,secret\nalice,1,AAAA\n")
    assert not report.ok and report.problems[0].source == "line 1"


def test_csv_duplicate_serial_is_reported() -> None:
    text = HEADER + f"alice,7,{B32_160},30,C,M\nbob,7,{B32_160},30,C,M\n"
    report = parse_csv(text)
    assert [str(p) for p in report.problems] == ["line 3: serial 7 repeats line 2"]


def test_token_repr_never_shows_the_secret() -> None:
    (token,) = parse_csv(HEADER + f"alice,7,{B32_160},30,C,M\n").tokens
    assert "1234567890" not in repr(token)
