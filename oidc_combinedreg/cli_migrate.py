"""``combinedreg migrate``: bring the configured store's schema up to date.

PostgreSQL's migrations run here, before a new version of the package starts serving (in
development the store also applies them at start). Several hosts may run it at once: the
migrations wait for each other on an advisory lock and each is applied once. A SQLite file is
migrated whenever it is opened, so the command only opens it; Redis has no schema.
"""

from __future__ import annotations

import json
import sys

import click

from .cli_support import load_or_exit
from .clock import SystemClock
from .exceptions import StoreUnavailable

__all__ = ["migrate_command"]


@click.command("migrate")
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of text")
def migrate_command(config_file: str, as_json: bool) -> None:
    """Apply the store's missing schema migrations (safe from several hosts at once)."""
    config = load_or_exit(config_file)
    storage = config.storage
    result: dict[str, object] = {"backend": storage.backend}
    try:
        if storage.backend == "postgres":
            from .store.postgres_pool import migrate_database

            assert storage.postgres is not None
            applied, version = migrate_database(
                storage.postgres.dsn,
                now=SystemClock().now(),
                connect_timeout=storage.postgres.connect_timeout,
            )
            result.update(applied=applied, version=version)
        elif storage.backend == "sqlite":
            from .store.sqlite import SqliteStore

            sqlite = SqliteStore(storage.sqlite_path, clock=SystemClock())  # migrates at open
            try:
                result["version"] = sqlite.schema_version()
            finally:
                sqlite.close()
    except StoreUnavailable as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    elif "version" not in result:
        click.echo(f"{storage.backend}: no schema to migrate")
    else:
        count = result.get("applied")
        done = "" if count is None else f" ({count} migration(s) applied)"
        click.echo(f"{storage.backend}: schema at version {result['version']}{done}")
