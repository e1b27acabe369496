"""Config files that are not text, too deep, or name a store the IdP cannot use: a path-named
error, never a traceback, and the same answer from check-config and at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from oidc_combinedreg import ConfigError, check_config, load_config
from oidc_combinedreg.cli import main
from oidc_combinedreg.crypto import generate_key

KEY = generate_key()


def run_check(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_a_file_that_is_not_utf8_is_a_path_named_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[general]\norganization = "Caf\xe9"\n')
    code, output = run_check(path)
    assert code == 1
    assert "error: latin1.toml: expected UTF-8 text" in output
    assert "Traceback" not in output
    with pytest.raises(ConfigError, match="latin1.toml: expected UTF-8 text"):
        load_config(path)


def test_deeply_nested_arrays_are_a_path_named_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("a = " + "[" * 50_000 + "]" * 50_000 + "\n")
    code, output = run_check(path)
    assert code == 1
    assert "error: deep.toml: nested too deeply" in output
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(path)


def test_deep_nesting_below_the_limit_is_read_normally(tmp_path: Path) -> None:
    path = tmp_path / "nested.toml"
    path.write_text(f'[secrets]\nencryption_keys = ["{KEY}"]\n[general]\nx = [[[[1]]]]\n')
    assert [str(p) for p in check_config(path)][0] == "general.x: unknown key"
