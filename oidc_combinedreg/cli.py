"""The ``combinedreg`` command: config check, what-if, keys (admin tasks join as they land)."""

from __future__ import annotations

import json
import sys

import click

from .admin.cli import register_admin_commands
from .cli_support import directory_option, known_user, load_directory, load_or_exit, security_info
from .config import check_config

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="oidc-combinedreg")
def main() -> None:
    """oidc-combinedreg: combined security info registration for OpenID providers."""


@main.command("check-config")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of text")
def check_config_command(file: str, as_json: bool) -> None:
    """Validate FILE: print every error and warning with its path, or "ok". Writes nothing (a
    key file that ``generate_missing`` would create is created by the start)."""
    problems = check_config(file)
    errors = [p for p in problems if p.severity == "error"]
    if as_json:
        listed = [{"path": p.path, "message": p.message, "severity": p.severity} for p in problems]
        click.echo(json.dumps({"ok": not errors, "problems": listed}, indent=2))
        sys.exit(1 if errors else 0)
    for p in problems:
        prefix = "error" if p.severity == "error" else "warning"
        click.echo(f"{prefix}: {p}", err=p.severity == "error")
    if errors:
        click.echo(f"{len(errors)} error(s) in {file}", err=True)
        sys.exit(1)
    click.echo("ok")


@main.command("what-if")
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False))
@click.option("--user", required=True, help="user id")
@click.option("--groups", default=None, help="comma-separated groups (without --directory)")
@directory_option
@click.option("--ip", required=True, help="client IP address")
@click.option("--action", default=None, help="user action, e.g. register-security-information")
@click.option("--app", default=None, help="OIDC client id of the application")
@click.option("--client-app", default="browser", show_default=True)
@click.option("--risk", default="none", show_default=True, help="sign-in risk level")
@click.option("--satisfied", default="", help="controls already met, e.g. mfa")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of text")
def what_if_command(
    config_file: str,
    user: str,
    groups: str | None,
    directory_spec: str | None,
    ip: str,
    action: str | None,
    app: str | None,
    client_app: str,
    risk: str,
    satisfied: str,
    as_json: bool,
) -> None:
    """Show what Conditional Access decides for one sign-in, policy by policy."""
    from .conditional_access import render_json, render_text, what_if

    if (action is None) == (app is None):
        raise click.UsageError("give exactly one of --action and --app")
    if groups is not None and directory_spec is not None:
        raise click.UsageError("give --groups or --directory (which knows the groups), not both")
    config = load_or_exit(config_file)
    if directory_spec is not None:
        found = known_user(load_directory(directory_spec), user)
        assert found is not None
        group_list = sorted(found.groups)
    else:
        group_list = [g.strip() for g in (groups or "").split(",") if g.strip()]
    try:
        decision = what_if(
            config.conditional_access,
            user,
            group_list,
            ip,
            action=action,
            app=app,
            client_app=client_app,
            sign_in_risk=risk,
            satisfied=[s.strip() for s in satisfied.split(",") if s.strip()],
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(render_json(decision) if as_json else render_text(decision))


@main.command("flush-notifications")
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of text")
@directory_option
def flush_notifications_command(
    config_file: str, as_json: bool, directory_spec: str | None
) -> None:
    """Send every queued "security info changed" notification that has not gone out yet.

    Notifications are queued in the same store transaction as the change; one that could not be
    sent at the time waits here. Run it from cron (or a systemd timer) every few minutes. With
    --directory, the directory's email address of each user is written to as well (as the
    server does), not only their registered email methods.
    """
    with security_info(config_file, load_directory(directory_spec)) as (_, info):
        pending = len(info.notifier.pending())
        sent = info.notifier.flush()
    if as_json:
        click.echo(json.dumps({"sent": sent, "pending": pending}))
    else:
        click.echo(f"{sent} of {pending} queued notification(s) sent")
    if sent < pending:
        sys.exit(2)


@main.command("generate-key")
def generate_key_command() -> None:
    """Print a new encryption key for [secrets].encryption_keys (put new keys first)."""
    from .crypto import generate_key

    click.echo(generate_key())


@main.command("generate-vapid-keys")
@click.option(
    "--subject",
    default=None,
    help="contact for the push services (RFC 8292 2.1): mailto:address or https URL",
)
def generate_vapid_keys_command(subject: str | None) -> None:
    """Print a [methods.push.web_push] table with a new VAPID key pair (Web Push, RFC 8292)."""
    from .config.web_push import generate_vapid_keys

    private, public = generate_vapid_keys()
    contact = (
        f"subject = {json.dumps(subject)}"
        if subject
        else '# subject = "mailto:it@example.com"  (required: how push services reach you)'
    )
    click.echo(
        "# Web Push notifications for the authenticator web app (docs/methods/push.md).\n"
        "# The private key is a secret: keep this file private, or put the key in a file of\n"
        "# its own and name it with vapid_private_key_file instead.\n"
        "[methods.push.web_push]\n"
        f'vapid_private_key = "{private}"\n'
        f"{contact}\n"
        "# The application server key (public; the app gets it from the server, RFC 8292 3.2):\n"
        f"# {public}"
    )


def _add_subcommands() -> None:
    # Kept in one block at the end: the command modules live with the features they drive.
    from .cli_export import export_command, import_command
    from .cli_migrate import migrate_command
    from .device import authenticator_cli
    from .token_admin import import_tokens_command

    main.add_command(authenticator_cli)
    main.add_command(import_tokens_command)
    main.add_command(migrate_command)
    main.add_command(export_command)
    main.add_command(import_command)


_add_subcommands()
register_admin_commands(main)
