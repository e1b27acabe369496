"""``combinedreg migrate`` on PostgreSQL: two hosts running it at once apply each migration once
(issue 21.3); a production start refuses the database until it ran."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from postgres_servers import PostgresServer
from store_helpers import T0

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.store.postgres import PostgresStore
from oidc_combinedreg.store.postgres_schema import MIGRATIONS

COMBINEDREG = Path(sys.executable).parent / "combinedreg"


def _config(tmp_path: Path, dsn: str, env: str = "production") -> Path:
    from oidc_combinedreg.crypto import generate_key

    path = tmp_path / "combinedreg.toml"
    path.write_text(
        f'[general]\nenvironment = "{env}"\n'
        f'[secrets]\nencryption_keys = ["{generate_key()}"]\n'
        f'[storage]\nbackend = "postgres"\n[storage.postgres]\ndsn = "{dsn}"\n'
    )
    return path


def test_two_hosts_migrate_at_once(postgres_server: PostgresServer, tmp_path: Path) -> None:
    dsn = postgres_server.create_database("migrate_two")
    config = _config(tmp_path, dsn)
    command = [str(COMBINEDREG), "migrate", "--config", str(config), "--json"]
    hosts = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in "ab"
    ]
    outputs = [host.communicate(timeout=120) for host in hosts]
    assert [host.returncode for host in hosts] == [0, 0], outputs
    results = [json.loads(out) for out, _ in outputs]
    assert sorted(r["applied"] for r in results) == [0, len(MIGRATIONS)]
    assert {r["version"] for r in results} == {len(MIGRATIONS)}
    with psycopg.connect(dsn, autocommit=True) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM combinedreg_schema")]
    assert sorted(versions) == list(range(1, len(MIGRATIONS) + 1))
    # and a production store opens on it now
    PostgresStore(dsn, clock=FrozenClock(T0), migrate=False).close()


def test_production_start_refuses_an_unmigrated_database_until_migrate(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    from oidc_combinedreg import load_config
    from oidc_combinedreg.store.factory import open_store

    dsn = postgres_server.create_database("migrate_prod")
    config = load_config(_config(tmp_path, dsn))
    with pytest.raises(StoreUnavailable, match="combinedreg migrate"):
        open_store(config.storage, clock=FrozenClock(T0))
    done = subprocess.run(
        [str(COMBINEDREG), "migrate", "--config", str(_config(tmp_path, dsn))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"postgres: schema at version {len(MIGRATIONS)}" in done.stdout
    open_store(config.storage, clock=FrozenClock(T0)).close()


def test_migrate_reports_an_unreachable_server(tmp_path: Path) -> None:
    config = _config(tmp_path, "host=127.0.0.1 port=1 dbname=x user=x")
    done = subprocess.run(
        [str(COMBINEDREG), "migrate", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: postgres 127.0.0.1:1/x: OperationalError")
    assert "refused" in done.stderr


def test_migrate_on_sqlite_opens_the_file_and_on_redis_has_nothing_to_do(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from oidc_combinedreg.cli import main
    from oidc_combinedreg.crypto import generate_key

    config = tmp_path / "c.toml"
    config.write_text(f'[secrets]\nencryption_keys = ["{generate_key()}"]\n')
    done = CliRunner().invoke(main, ["migrate", "--config", str(config), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["backend"] == "sqlite"
    assert json.loads(done.output)["version"] >= 1
    assert (tmp_path / "combinedreg.sqlite3").exists()
    config.write_text(
        f'[secrets]\nencryption_keys = ["{generate_key()}"]\n'
        '[storage]\nbackend = "redis"\n[storage.redis]\nurl = "redis://127.0.0.1:1/0"\n'
    )
    done = CliRunner().invoke(main, ["migrate", "--config", str(config)])
    assert done.exit_code == 0, done.output
    assert done.output == "redis: no schema to migrate\n"
