"""``combinedreg report | tap | unlock | admin-token``: the admin tasks from a shell.

The CLI opens the store the config names and has no Directory (the host owns it), so reports
evaluate group-scoped policies without groups (their rows say ``in_directory: no``) and a TAP can
be issued for any user id: check the id. Everything is audited with the actor ``cli:<login>``.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from ..cli_support import security_info
from ..exceptions import InvalidInput
from .auth import hash_token, new_token
from .reports import AUDIT_COLUMNS, REGISTRATION_COLUMNS, parse_iso, render

if TYPE_CHECKING:
    from .service import AdminService

__all__ = ["register_admin_commands"]

_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
_CONFIG = click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False))


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in a container
        return "cli"


@contextmanager
def _service(config_file: str) -> Iterator[AdminService]:
    from .service import AdminService

    with security_info(config_file) as (config, info):
        yield AdminService(info=info, directory=None, config=config.admin)


def _when(name: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_iso(text)
    except ValueError as exc:
        raise click.BadParameter(f"expected an ISO 8601 date or date-time, got {text!r}") from exc


@click.command("report")
@click.argument("kind", type=click.Choice(["registration", "usage", "audit"]))
@_CONFIG
@_FORMAT
@click.option("--user", default=None, help="one user (registration, audit)")
@click.option("--event", default=None, help="event type or dotted prefix, e.g. tap. (audit)")
@click.option("--since", default=None, help="ISO 8601, inclusive (usage, audit)")
@click.option("--until", default=None, help="ISO 8601, exclusive (usage, audit)")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000))
def report_command(
    kind: str,
    config_file: str,
    fmt: str,
    user: str | None,
    event: str | None,
    since: str | None,
    until: str | None,
    limit: int,
) -> None:
    """Print a report: registration details, usage summary or the audit log."""
    start, end = _when("since", since), _when("until", until)
    with _service(config_file) as admin:
        if kind == "registration":
            rows = [r.to_json() for r in admin.registration_rows(user)]
            click.echo(render(rows, REGISTRATION_COLUMNS, fmt))
        elif kind == "usage":
            summary = admin.usage(since=start, until=end)
            if fmt == "json":
                click.echo(json.dumps(summary.to_json(), indent=2))
            else:
                click.echo(render(summary.rows(), ("section", "name", "measure", "value"), fmt))
        else:
            events = admin.audit(user_id=user, event=event, since=start, until=end, limit=limit)
            click.echo(render(events, AUDIT_COLUMNS, fmt))


@click.group("tap")
def tap_group() -> None:
    """Temporary Access Pass: issue or revoke."""


@tap_group.command("issue")
@_CONFIG
@click.option("--user", required=True, help="user id")
@click.option(
    "--hours", type=click.IntRange(1, 720), default=None, help="lifetime (default: config)"
)
@click.option("--minutes", type=click.IntRange(10, 43200), default=None, help="lifetime in minutes")
@click.option("--multi-use", is_flag=True, help="usable until it expires (default: one sign-in)")
def tap_issue_command(
    config_file: str, user: str, hours: int | None, minutes: int | None, multi_use: bool
) -> None:
    """Issue a pass for USER (replacing any earlier one) and print it: it is shown only once."""
    if hours is not None and minutes is not None:
        raise click.UsageError("give --hours or --minutes, not both")
    lifetime = hours * 60 if hours is not None else minutes
    with _service(config_file) as admin:
        try:
            tap = admin.issue_tap(
                user, minutes=lifetime, one_time=not multi_use, actor=_actor(), ip=None
            )
        except InvalidInput as exc:
            raise click.UsageError(exc.message) from exc
    from .reports import iso

    click.echo(f"Temporary Access Pass for {tap.user_id}: {tap.code}")
    usage = "one sign-in" if tap.one_time else "any number of sign-ins"
    click.echo(f"valid until {iso(tap.expires_at)}, for {usage}. It is not shown again.")


@tap_group.command("revoke")
@_CONFIG
@click.option("--user", required=True, help="user id")
def tap_revoke_command(config_file: str, user: str) -> None:
    """Delete USER's pass."""
    with _service(config_file) as admin:
        found = admin.revoke_tap(user, actor=_actor(), ip=None)
    click.echo("revoked" if found else f"{user} has no Temporary Access Pass")
    if not found:
        sys.exit(1)


@click.command("unlock")
@_CONFIG
@click.option("--user", required=True, help="user id")
@click.option("--status", "status_only", is_flag=True, help="only show the counters")
def unlock_command(config_file: str, user: str, status_only: bool) -> None:
    """Clear USER's failure counters (the MFA codes' lock; audited), or show them (--status)."""
    from .service import UnknownUser

    with _service(config_file) as admin:
        try:
            state = (
                admin.lock_state(user)
                if status_only
                else admin.unlock(user, actor=_actor(), ip=None)
            )
        except UnknownUser as exc:
            raise click.UsageError(f"the store knows no user {user!r}") from exc
    locked = "locked" if state["locked"] else "not locked"
    counts = (
        f"{state['consecutive_failures']} of {state['max_consecutive_failures']} consecutive "
        f"failures, {state['tap_failures']} wrong passes in the window, "
        f"{state['reset_attempts_today']} reset attempts today"
    )
    if status_only:
        click.echo(f"{user}: {locked} ({counts})")
    else:
        click.echo(f"{user}: unlocked; it was {locked} ({counts})")


@click.command("admin-token")
@click.option("--name", default="admin", show_default=True, help="shown in the audit log")
@click.option("--user", default=None, help="the admin user the token acts for")
def admin_token_command(name: str, user: str | None) -> None:
    """Print a new admin API token, and the lines to paste into [admin] of the config."""
    token = new_token()
    click.echo(f"token (give it to the caller, it is not stored): {token}")
    click.echo("")
    click.echo("[[admin.tokens]]")
    click.echo(f"name = {json.dumps(name)}")
    click.echo(f'hash = "{hash_token(token)}"')
    if user:
        click.echo(f"user = {json.dumps(user)}")


def register_admin_commands(main: click.Group) -> None:
    """Add the admin commands to the ``combinedreg`` group."""
    main.add_command(report_command)
    main.add_command(tap_group)
    main.add_command(unlock_command)
    main.add_command(admin_token_command)
