"""What every ``combinedreg`` subcommand that reads the config shares: load it or exit with the
errors, and open the store it names (SQLite or Redis) for the command's duration."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from .clock import SystemClock
from .config import Config, load_config
from .exceptions import ConfigError

if TYPE_CHECKING:
    from .service import SecurityInfo

__all__ = ["load_or_exit", "security_info"]


def load_or_exit(config_file: str) -> Config:
    """The config, or every problem on stderr and exit status 1."""
    try:
        return load_config(config_file)
    except ConfigError as exc:
        for p in exc.problems:
            click.echo(f"error: {p}", err=True)
        sys.exit(1)


@contextmanager
def security_info(config_file: str) -> Iterator[tuple[Config, SecurityInfo]]:
    """The config and a :class:`SecurityInfo` over the configured store, closed afterwards."""
    from .service import SecurityInfo
    from .store.factory import open_store

    config = load_or_exit(config_file)
    clock = SystemClock()
    try:
        store = open_store(config.storage, clock=clock)
    except ConfigError as exc:  # the store itself refused (a Redis without persistence)
        for p in exc.problems:
            click.echo(f"error: {p}", err=True)
        sys.exit(1)
    try:
        yield config, SecurityInfo(config=config, store=store, clock=clock)
    finally:
        store.close()
