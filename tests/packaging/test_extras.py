"""Optional dependencies: a config that needs a missing extra is an error naming the extra, at
check and load time (never an ImportError in a request); without phones, phonenumbers is not needed.

The extras are installed in the test venv, so "missing" is made real the way Python itself spells
it: ``sys.modules[name] = None`` makes ``import name`` fail. The fresh-virtualenv test
(test_wheel.py) checks the same without the packages installed at all.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from oidc_combinedreg import ConfigError, check_config, load_config
from oidc_combinedreg.cli import main
from oidc_combinedreg.crypto import generate_key
from oidc_combinedreg.extras import MissingExtra, missing_extra

BASE = """
[general]
environment = "development"
[web]
secure_cookies = false
[secrets]
encryption_keys = ["{key}"]
[storage.sqlite]
path = "reg.sqlite3"
"""


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "combinedreg.toml"
    path.write_text(BASE.format(key=generate_key()) + extra)
    return path


def _without(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in list(sys.modules):
        if name in modules or name.split(".")[0] in modules:
            monkeypatch.delitem(sys.modules, name)
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)  # type: ignore[arg-type]


REDIS = """
[storage]
backend = "redis"
[storage.redis]
url = "redis://127.0.0.1:1/0"
"""


def test_redis_backend_without_the_extra_is_a_config_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without(monkeypatch, "redis")
    path = _config(tmp_path, REDIS)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert problem.path == "storage.backend"
    assert 'pip install "oidc-combinedreg[redis]"' in str(problem)
    # check-config says the same, and does not try to reach the server
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 1
    assert "storage.backend" in result.output
    assert 'pip install "oidc-combinedreg[redis]"' in result.output
    assert "redis" not in sys.modules or sys.modules["redis"] is None


@pytest.mark.parametrize("table", ["text", "voice"])
def test_a_phone_provider_without_the_extra_is_a_config_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str
) -> None:
    _without(monkeypatch, "phonenumbers")
    path = _config(tmp_path, f'[delivery.{table}]\nprovider = "console"\n')
    problems = [p for p in check_config(path) if p.severity == "error"]
    assert [p.path for p in problems] == [f"delivery.{table}.provider"]
    assert 'pip install "oidc-combinedreg[phone]"' in problems[0].message


def test_without_phones_the_config_and_the_middleware_need_no_phonenumbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without(monkeypatch, "phonenumbers")
    for name in [n for n in sys.modules if n.startswith("oidc_combinedreg.methods.phone")]:
        monkeypatch.delitem(sys.modules, name)
    config = load_config(_config(tmp_path, '[methods.phone]\ndefault_region = "DE"\n'))
    from oidc_combinedreg.methods.phone import mask_phone, parse_phone

    assert config.phone.default_region == "DE"
    assert mask_phone("+14155550123") == "XXXXXXXX23"  # a stored number still shows masked
    with pytest.raises(MissingExtra, match=r"oidc-combinedreg\[phone\]"):
        parse_phone("+14155550123", None)


def test_pskc_import_without_the_extra_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without(monkeypatch, "pskc")
    assert missing_extra("pskc") is not None
    from oidc_combinedreg.methods.token_import import parse_pskc

    with pytest.raises(MissingExtra, match=r'pip install "oidc-combinedreg\[pskc\]"'):
        parse_pskc(b"<KeyContainer/>")
    pskc_file = tmp_path / "tokens.pskcxml"
    pskc_file.write_bytes(b"<KeyContainer/>")
    result = CliRunner().invoke(
        main,
        ["import-tokens", "--config", str(_config(tmp_path)), "--pskc", str(pskc_file)],
    )
    assert result.exit_code == 1, result.output
    assert 'pip install "oidc-combinedreg[pskc]"' in result.output
    assert not (tmp_path / "reg.sqlite3").exists()  # refused before the store is opened


def test_installed_extras_are_not_reported() -> None:
    assert [missing_extra(e) for e in ("redis", "phone", "pskc")] == [None, None, None]


def test_check_config_writes_no_key_file(tmp_path: Path) -> None:
    """A check writes nothing: ``key_file`` + ``generate_missing`` is created by the start only,
    and not at all for an invalid config (it used to be written by check-config)."""
    text = """
[general]
environment = "development"
[web]
secure_cookies = false
[secrets]
key_file = "keys/combinedreg.keys"
generate_missing = true
[storage.sqlite]
path = "reg.sqlite3"
"""
    path = tmp_path / "combinedreg.toml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
    assert list(tmp_path.iterdir()) == [path]
    path.write_text(text + "[throttle]\nwindow = 1\n")  # invalid
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 1
    assert "throttle.window" in result.output
    assert list(tmp_path.iterdir()) == [path]
    # the start (load_config) still creates it, once
    path.write_text(text)
    config = load_config(path)
    assert (tmp_path / "keys" / "combinedreg.keys").exists()
    assert load_config(path).secrets.encryption_keys == config.secrets.encryption_keys


def test_the_admin_apis_pskc_import_without_the_extra_is_not_supported_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oidc_combinedreg.admin.service import AdminService, NotSupported
    from oidc_combinedreg.clock import SystemClock
    from oidc_combinedreg.service import SecurityInfo
    from oidc_combinedreg.store.factory import open_store

    _without(monkeypatch, "pskc")
    config = load_config(_config(tmp_path))
    store = open_store(config.storage, clock=SystemClock())
    try:
        info = SecurityInfo(config=config, store=store, clock=SystemClock())
        admin = AdminService(info=info, directory=None, config=config.admin)
        with pytest.raises(NotSupported) as caught:
            admin.import_hardware_tokens(fmt="pskc", content="PA==", actor="t", ip=None)
        assert 'pip install "oidc-combinedreg[pskc]"' in caught.value.message
    finally:
        store.close()
