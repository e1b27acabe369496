"""What every ``combinedreg`` subcommand that reads the config shares: load it or exit with the
errors, open the store it names (SQLite or Redis) for the command's duration, and load the host's
Directory (``--directory module:attr``) for the commands that name users."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from .clock import SystemClock
from .config import Config, load_config
from .directory import Directory, DirectoryUser
from .exceptions import ConfigError

if TYPE_CHECKING:
    from .service import SecurityInfo

__all__ = ["directory_option", "known_user", "load_directory", "load_or_exit", "security_info"]


def load_or_exit(config_file: str) -> Config:
    """The config, or every problem on stderr and exit status 1."""
    try:
        return load_config(config_file)
    except ConfigError as exc:
        for p in exc.problems:
            click.echo(f"error: {p}", err=True)
        sys.exit(1)


@contextmanager
def security_info(
    config_file: str, directory: Directory | None = None
) -> Iterator[tuple[Config, SecurityInfo]]:
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
        yield config, SecurityInfo(config=config, store=store, clock=clock, directory=directory)
    finally:
        store.close()


#: ``--directory module:attr``, for every command that names users (or $COMBINEDREG_DIRECTORY)
directory_option = click.option(
    "--directory",
    "directory_spec",
    metavar="MODULE:ATTR",
    envvar="COMBINEDREG_DIRECTORY",
    default=None,
    help="the host's Directory, as for `flask --app`: an object, or a function or class that "
    "makes one with no arguments (env COMBINEDREG_DIRECTORY); users it does not know are refused",
)

_DIRECTORY_METHODS = ("get_user", "set_password", "set_per_user_mfa")


def load_directory(spec: str | None) -> Directory | None:
    """The Directory ``module:attr`` names (None without one), or a usage error saying why not.

    The current folder is importable, as with ``flask --app``; an attribute that is not itself a
    Directory but a function or class is called without arguments to make one.
    """
    if spec is None:
        return None
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise click.BadParameter(f"expected MODULE:ATTR, got {spec!r}", param_hint="--directory")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(
            f"cannot import {module_name!r}: {exc}", param_hint="--directory"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise click.BadParameter(
                f"module {module_name!r} has no attribute {attr!r}", param_hint="--directory"
            )
        obj = getattr(obj, part)
    if not _is_directory(obj) and callable(obj):
        obj = obj()
    if not _is_directory(obj):
        lacking = [m for m in _DIRECTORY_METHODS if not callable(getattr(obj, m, None))]
        raise click.BadParameter(
            f"{spec} is not a Directory: it has no {', '.join(lacking)} "
            "(docs/integration.md, 'The Directory')",
            param_hint="--directory",
        )
    directory: Directory = obj
    return directory


def _is_directory(obj: object) -> bool:
    return not isinstance(obj, type) and all(
        callable(getattr(obj, m, None)) for m in _DIRECTORY_METHODS
    )


def known_user(directory: Directory | None, user_id: str) -> DirectoryUser | None:
    """The user from the Directory; a usage error when it does not know them. Without a
    Directory: None, and a warning that the id was not checked."""
    if directory is None:
        click.echo(
            f"warning: {user_id!r} was not checked against the host's directory "
            "(give --directory MODULE:ATTR)",
            err=True,
        )
        return None
    user = directory.get_user(user_id)
    if user is None:
        raise click.UsageError(f"the directory knows no user {user_id!r}")
    return user
