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


# -- [storage.sqlite] path: one rule for check-config and start -----------------------------------


def storage_config(tmp_path: Path, sqlite_path: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[secrets]\nencryption_keys = ["{KEY}"]\n[storage.sqlite]\npath = "{sqlite_path}"\n'
    )
    return path


@pytest.mark.parametrize(
    "uri",
    ["file:{dir}/store.db?mode=ro", "file:{dir}/store.db?immutable=1", "file:store.db?mode=ro"],
)
def test_a_read_only_sqlite_uri_is_refused_by_check_config_and_at_start(
    tmp_path: Path, uri: str
) -> None:
    from oidc_combinedreg.clock import SystemClock
    from oidc_combinedreg.config.model import StorageConfig
    from oidc_combinedreg.store.factory import open_store

    path = storage_config(tmp_path, uri.format(dir=tmp_path))
    code, output = run_check(path)
    assert code == 1
    assert "error: storage.sqlite.path: expected a database the IdP can write" in output
    with pytest.raises(ConfigError, match="storage.sqlite.path: expected a database the IdP"):
        load_config(path)
    # The same rule where a config built in code opens the store.
    with pytest.raises(ConfigError, match="storage.sqlite.path: expected a database the IdP"):
        open_store(StorageConfig(sqlite_path=uri.format(dir=tmp_path)), clock=SystemClock())
    assert not (tmp_path / "store.db").exists()


def test_an_in_memory_sqlite_path_is_refused_by_check_config(tmp_path: Path) -> None:
    code, output = run_check(storage_config(tmp_path, ":memory:"))
    assert code == 1
    assert "error: storage.sqlite.path: expected a database file" in output


def test_a_relative_file_uri_is_resolved_next_to_the_config(tmp_path: Path) -> None:
    from oidc_combinedreg.clock import SystemClock
    from oidc_combinedreg.store.factory import open_store

    config = load_config(storage_config(tmp_path, "file:store.db?cache=private"))
    assert config.storage.sqlite_path == f"file:{tmp_path}/store.db?cache=private"
    store = open_store(config.storage, clock=SystemClock())
    store.close()  # type: ignore[attr-defined]
    assert (tmp_path / "store.db").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("file:")] == []
