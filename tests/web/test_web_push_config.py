"""``[methods.push.web_push]`` (issue 20.5): what the reader accepts, what it refuses (each error
names its path and what was expected), and ``combinedreg generate-vapid-keys``, whose table
loads as printed."""

from __future__ import annotations

import base64
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from webtest import base_config

from oidc_combinedreg import extras, parse_config
from oidc_combinedreg.cli import main
from oidc_combinedreg.config.web_push import generate_vapid_keys
from oidc_combinedreg.exceptions import ConfigError

SUBJECT = "mailto:it@example.com"


def config_with(tmp_path: Path, web_push: dict[str, Any], **push: Any) -> Any:
    data = base_config(tmp_path, methods={"push": {"web_app": True, **push, "web_push": web_push}})
    return parse_config(data, base_dir=tmp_path)


def problems(tmp_path: Path, web_push: dict[str, Any], **push: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as err:
        config_with(tmp_path, web_push, **push)
    return [(p.path, p.message) for p in err.value.problems]


def test_the_key_gives_the_application_server_key(tmp_path: Path) -> None:
    private, public = generate_vapid_keys()
    cfg = config_with(tmp_path, {"vapid_private_key": private, "subject": SUBJECT}).push.web_push
    assert cfg.application_server_key == public and cfg.subject == SUBJECT
    assert (cfg.ttl, cfg.timeout) == (120, 5)
    point = base64.urlsafe_b64decode(public + "=")
    assert len(point) == 65 and point[0] == 4  # an uncompressed P-256 point (RFC 8292 3.2)
    assert private not in repr(cfg)


def test_a_pem_key_file_relative_to_the_config(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "vapid.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    web_push = {"vapid_private_key_file": "vapid.pem", "subject": "https://idp.example.com/"}
    cfg = config_with(tmp_path, web_push).push.web_push
    expected = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert base64.urlsafe_b64decode(cfg.application_server_key + "=") == expected


def test_without_the_table_web_push_is_off(tmp_path: Path) -> None:
    data = base_config(tmp_path, methods={"push": {"web_app": True}})
    assert parse_config(data).push.web_push is None


P = "methods.push.web_push"


@pytest.mark.parametrize(
    ("web_push", "push", "path", "words"),
    [
        pytest.param({"subject": SUBJECT}, {}, P, "exactly one of", id="no key"),
        pytest.param(
            {"vapid_private_key": "K", "vapid_private_key_file": "f", "subject": SUBJECT},
            {},
            P,
            "exactly one of",
            id="both keys",
        ),
        pytest.param(
            {"vapid_private_key": "AAAA", "subject": SUBJECT},
            {},
            f"{P}.vapid_private_key",
            "expected 32 bytes",
            id="a short key",
        ),
        pytest.param(
            {"vapid_private_key_file": "missing.pem", "subject": SUBJECT},
            {},
            f"{P}.vapid_private_key_file",
            "cannot read",
            id="a missing file",
        ),
        pytest.param({"vapid_private_key": "@"}, {}, f"{P}.subject", "required", id="no subject"),
        pytest.param(
            {"vapid_private_key": "@", "subject": "it@example.com"},
            {},
            f"{P}.subject",
            "mailto: address or an https URL",
            id="subject without mailto",
        ),
        pytest.param(
            {"vapid_private_key": "@", "subject": "http://idp.example.com"},
            {},
            f"{P}.subject",
            "mailto: address or an https URL",
            id="http subject",
        ),
        pytest.param(
            {"vapid_private_key": "@", "subject": SUBJECT, "ttl": 300},
            {"request_ttl": 120},
            f"{P}.ttl",
            "at most methods.push.request_ttl (120)",
            id="ttl beyond the request",
        ),
        pytest.param(
            {"vapid_private_key": "@", "subject": SUBJECT},
            {"web_app": False},
            P,
            "web_app = true",
            id="no web app",
        ),
        pytest.param(
            {"vapid_private_key": "@", "subject": SUBJECT, "sender": "x"},
            {},
            f"{P}.sender",
            "unknown key",
            id="unknown key",
        ),
    ],
)
def test_a_bad_table_is_refused_with_its_path(
    tmp_path: Path, web_push: dict[str, Any], push: dict[str, Any], path: str, words: str
) -> None:
    if web_push.get("vapid_private_key") == "@":
        web_push = {**web_push, "vapid_private_key": generate_vapid_keys()[0]}
    found = problems(tmp_path, web_push, **push)
    assert any(p == path and words in m for p, m in found), found


def test_without_the_extra_the_config_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = extras._importable
    monkeypatch.setattr(extras, "_importable", lambda m: m != "pywebpush" and real(m))
    found = problems(tmp_path, {"vapid_private_key": generate_vapid_keys()[0], "subject": SUBJECT})
    assert any(p == P and 'pip install "oidc-combinedreg[webpush]"' in m for p, m in found), found


def test_generate_vapid_keys_prints_a_table_that_loads(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["generate-vapid-keys", "--subject", SUBJECT])
    assert result.exit_code == 0, result.output
    table = tomllib.loads(result.output)["methods"]["push"]["web_push"]
    public = result.output.strip().splitlines()[-1].removeprefix("# ")
    cfg = config_with(tmp_path, table).push.web_push
    assert cfg.application_server_key == public and cfg.subject == SUBJECT
    # Without --subject the table is refused until one is written in.
    bare = CliRunner().invoke(main, ["generate-vapid-keys"])
    table = tomllib.loads(bare.output)["methods"]["push"]["web_push"]
    assert "subject" not in table
    assert (f"{P}.subject", "required: expected a string") in problems(tmp_path, table)


@pytest.mark.parametrize("kind", ["encrypted", "rsa", "p384", "garbage"])
def test_a_pem_that_is_not_an_unencrypted_p256_key_is_refused(tmp_path: Path, kind: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key: Any = {
        "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    }.get(kind, lambda: ec.generate_private_key(ec.SECP256R1()))()
    encryption: Any = (
        serialization.BestAvailableEncryption(b"secret")
        if kind == "encrypted"
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    if kind == "garbage":
        pem = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    (tmp_path / "vapid.pem").write_bytes(pem)
    found = problems(tmp_path, {"vapid_private_key_file": "vapid.pem", "subject": SUBJECT})
    assert [p for p, m in found if "P-256 private key" in m] == [f"{P}.vapid_private_key_file"], (
        found
    )
