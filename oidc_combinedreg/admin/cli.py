"""``combinedreg report | tap | unlock | admin-token``: the admin tasks from a shell.

The CLI opens the store the config names. The host owns the Directory: ``--directory
module:attr`` (or ``$COMBINEDREG_DIRECTORY``) loads it, as ``flask --app`` loads an app; then users
it does not know are refused, reports show names and groups and list the directory's users the
store has not seen (when the Directory has ``user_ids()``). Without it, reports evaluate
group-scoped policies without groups (``in_directory: no``) and a TAP is issued for any id, with a
warning. Everything is audited with the actor ``cli:<login>``. ``--json`` (``--format json`` for
reports) prints what a script reads.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from ..cli_support import directory_option, known_user, load_directory, security_info
from ..exceptions import InvalidInput
from .auth import hash_token, new_token
from .reports import AUDIT_COLUMNS, CAMPAIGN_COLUMNS, REGISTRATION_COLUMNS, parse_iso, render

if TYPE_CHECKING:
    from ..directory import Directory
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
_JSON = click.option("--json", "as_json", is_flag=True, help="print JSON instead of text")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in a container
        return "cli"


@contextmanager
def _service(config_file: str, directory: Directory | None = None) -> Iterator[AdminService]:
    from .service import AdminService

    with security_info(config_file, directory) as (config, info):
        yield AdminService(info=info, directory=directory, config=config.admin)


def _unknown(user: str, directory: Directory | None) -> click.UsageError:
    where = "the directory" if directory is not None else "the store"
    return click.UsageError(f"{where} knows no user {user!r}")


def _when(name: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_iso(text)
    except ValueError as exc:
        raise click.BadParameter(f"expected an ISO 8601 date or date-time, got {text!r}") from exc


@click.command("report")
@click.argument("kind", type=click.Choice(["registration", "usage", "audit", "campaign"]))
@_CONFIG
@_FORMAT
@click.option("--user", default=None, help="one user (registration, audit, campaign)")
@click.option("--event", default=None, help="event type or dotted prefix, e.g. tap. (audit)")
@click.option("--since", default=None, help="ISO 8601, inclusive (usage, audit)")
@click.option("--until", default=None, help="ISO 8601, exclusive (usage, audit)")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@directory_option
def report_command(
    kind: str,
    config_file: str,
    fmt: str,
    user: str | None,
    event: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    directory_spec: str | None,
) -> None:
    """Print a report: registration details, usage summary, the audit log or the registration
    campaign (who was asked, snoozed, is required, added the app)."""
    start, end = _when("since", since), _when("until", until)
    directory = load_directory(directory_spec)
    if user is not None and directory is not None:
        known_user(directory, user)
    with _service(config_file, directory) as admin:
        if kind == "registration":
            rows = [r.to_json() for r in admin.registration_rows(user)]
            click.echo(render(rows, REGISTRATION_COLUMNS, fmt))
        elif kind == "campaign":
            rows = [r.to_json() for r in admin.campaign_rows(user)]
            click.echo(render(rows, CAMPAIGN_COLUMNS, fmt))
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
@directory_option
@_JSON
@click.option(
    "--hours", type=click.IntRange(1, 720), default=None, help="lifetime (default: config)"
)
@click.option("--minutes", type=click.IntRange(10, 43200), default=None, help="lifetime in minutes")
@click.option("--multi-use", is_flag=True, help="usable until it expires (default: one sign-in)")
def tap_issue_command(
    config_file: str,
    user: str,
    directory_spec: str | None,
    as_json: bool,
    hours: int | None,
    minutes: int | None,
    multi_use: bool,
) -> None:
    """Issue a pass for USER (replacing any earlier one) and print it: it is shown only once."""
    from .service import UnknownUser

    if hours is not None and minutes is not None:
        raise click.UsageError("give --hours or --minutes, not both")
    lifetime = hours * 60 if hours is not None else minutes
    directory = load_directory(directory_spec)
    known_user(directory, user)  # before the store is opened: nothing is written for a typo
    with _service(config_file, directory) as admin:
        try:
            tap = admin.issue_tap(
                user, minutes=lifetime, one_time=not multi_use, actor=_actor(), ip=None
            )
        except UnknownUser as exc:
            raise _unknown(user, directory) from exc
        except InvalidInput as exc:
            raise click.UsageError(exc.message) from exc
    from .reports import iso

    if as_json:
        answer = {
            "user_id": tap.user_id,
            "code": tap.code,
            "expires_at": iso(tap.expires_at),
            "one_time": tap.one_time,
        }
        click.echo(json.dumps(answer, indent=2))
        return

    click.echo(f"Temporary Access Pass for {tap.user_id}: {tap.code}")
    usage = "one sign-in" if tap.one_time else "any number of sign-ins"
    click.echo(f"valid until {iso(tap.expires_at)}, for {usage}. It is not shown again.")


@tap_group.command("revoke")
@_CONFIG
@click.option("--user", required=True, help="user id")
@directory_option
@_JSON
def tap_revoke_command(
    config_file: str, user: str, directory_spec: str | None, as_json: bool
) -> None:
    """Delete USER's pass (exit status 1 when there was none)."""
    directory = load_directory(directory_spec)
    if directory is not None:
        known_user(directory, user)
    with _service(config_file, directory) as admin:
        found = admin.revoke_tap(user, actor=_actor(), ip=None)
    if as_json:
        click.echo(json.dumps({"user_id": user, "revoked": found}))
    else:
        click.echo("revoked" if found else f"{user} has no Temporary Access Pass")
    if not found:
        sys.exit(1)


@click.command("unlock")
@_CONFIG
@click.option("--user", required=True, help="user id")
@click.option("--status", "status_only", is_flag=True, help="only show the counters")
@directory_option
@_JSON
def unlock_command(
    config_file: str, user: str, status_only: bool, directory_spec: str | None, as_json: bool
) -> None:
    """Clear USER's failure counters (the MFA codes' lock; audited), or show them (--status)."""
    from .service import UnknownUser

    directory = load_directory(directory_spec)
    with _service(config_file, directory) as admin:
        try:
            state = (
                admin.lock_state(user)
                if status_only
                else admin.unlock(user, actor=_actor(), ip=None)
            )
        except UnknownUser as exc:
            raise _unknown(user, directory) from exc
    if as_json:
        click.echo(json.dumps({"user_id": user, "unlocked": not status_only, **state}, indent=2))
        return
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
@_JSON
def admin_token_command(name: str, user: str | None, as_json: bool) -> None:
    """Print a new admin API token, and the lines to paste into [admin] of the config."""
    token = new_token()
    if as_json:
        answer = {"token": token, "name": name, "hash": hash_token(token), "user": user}
        click.echo(json.dumps(answer, indent=2))
        return
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
