"""``[storage] backend = "postgres"`` and ``[storage.postgres]``: read, validated with path-named
errors, documented (issue 21.1)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from oidc_combinedreg import parse_config
from oidc_combinedreg.config.model import PostgresConfig
from oidc_combinedreg.config.reader import Reader
from oidc_combinedreg.crypto import generate_key
from oidc_combinedreg.exceptions import ConfigError

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _data(env: str = "development", **postgres: Any) -> dict[str, Any]:
    return {
        "general": {"environment": env},
        "secrets": {"encryption_keys": [generate_key()]},
        "web": {"secure_cookies": env == "production"},
        "storage": {"backend": "postgres", "postgres": postgres},
    }


def _problems(data: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, base_dir=tmp_path)
    return {p.path: str(p) for p in caught.value.problems}


def test_postgres_backend_reads_its_table(tmp_path: Path) -> None:
    config = parse_config(
        _data(dsn="host=db.internal dbname=idp", max_connections=20, pool_timeout_ms=2500),
        base_dir=tmp_path,
    )
    assert config.storage.backend == "postgres"
    assert config.storage.postgres == PostgresConfig(
        dsn="host=db.internal dbname=idp",
        max_connections=20,
        pool_timeout=2.5,
        migrate_at_start=True,  # development: the schema is brought up to date at start
    )


def test_an_empty_table_uses_libpq_environment_variables(tmp_path: Path) -> None:
    data = _data()
    del data["storage"]["postgres"]
    config = parse_config(data, base_dir=tmp_path)
    assert config.storage.postgres is not None and config.storage.postgres.dsn == ""


def test_production_does_not_migrate_at_start(tmp_path: Path) -> None:
    data = _data("production", dsn="postgresql://idp@db/idp")
    data["web"]["secure_cookies"] = True
    config = parse_config(data, base_dir=tmp_path)
    assert config.storage.postgres is not None
    assert config.storage.postgres.migrate_at_start is False


def test_bad_values_name_their_path(tmp_path: Path) -> None:
    problems = _problems(
        _data(
            min_connections=5,
            max_connections=2,
            connect_timeout_ms=500,
            statement_timeout_ms="5s",
            pool_size=3,
        ),
        tmp_path,
    )
    assert "min_connections (5)" in problems["storage.postgres.max_connections"]
    assert "storage.postgres.connect_timeout_ms" in problems
    assert "storage.postgres.statement_timeout_ms" in problems
    assert "unknown key" in problems["storage.postgres.pool_size"]


def test_an_unparsable_dsn_is_refused(tmp_path: Path) -> None:
    problems = _problems(_data(dsn="host=db dbname"), tmp_path)
    assert "postgresql:// URI" in problems["storage.postgres.dsn"]


def test_postgres_without_the_extra_names_the_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in ("psycopg", "psycopg_pool"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # type: ignore[arg-type]
    problems = _problems(_data(), tmp_path)
    assert 'pip install "oidc-combinedreg[postgres]"' in problems["storage.backend"]


def test_every_storage_postgres_key_is_documented(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    read: dict[str, set[str]] = {}
    done = Reader.done

    def recording_done(self: Reader) -> None:
        read.setdefault(self.path, set()).update(self._seen)
        done(self)

    monkeypatch.setattr(Reader, "done", recording_done)
    parse_config(_data(), base_dir=tmp_path)
    keys = read["storage.postgres"]
    assert {"dsn", "max_connections", "statement_timeout_ms"} <= keys
    text = DOC.read_text()
    start = text.index("### `[storage.postgres]`")
    rest = text[start + 10 :]
    end = re.search(r"^#{2,3} ", rest, re.M)
    table = rest[: end.start()] if end else rest
    missing = sorted(k for k in keys if f"| `{k}` |" not in table)
    assert missing == [], f"docs/configuration.md [storage.postgres] lacks {missing}"
    backend = next(
        line
        for line in text[text.index("## `[storage]`") :].splitlines()
        if line.startswith("| `backend` |")
    )
    assert '`"postgres"`' in backend and "[storage.postgres]" in backend
