"""``combinedreg import-tokens``: an admin imports hardware OATH tokens (CSV or PSKC), all or nothing."""

from __future__ import annotations

import binascii
import json
import sys
from pathlib import Path

import click

from .cli_support import directory_option

__all__ = ["import_tokens_command"]


def _key(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        key = binascii.unhexlify(text.strip())
    except (binascii.Error, ValueError):
        raise click.BadParameter("expected the pre-shared key in hex", param_hint="--key") from None
    if len(key) not in (16, 24, 32):
        raise click.BadParameter("expected a 128, 192 or 256-bit AES key", param_hint="--key")
    return key


@click.command("import-tokens")
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False))
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--pskc", "pskc_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--key", "key_hex", default=None, help="PSKC pre-shared key, hex")
@click.option("--user", default=None, help="assign PSKC keys that name no user to this user")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of text")
@directory_option
def import_tokens_command(
    config_file: str,
    csv_file: Path | None,
    pskc_file: Path | None,
    key_hex: str | None,
    user: str | None,
    as_json: bool,
    directory_spec: str | None,
) -> None:
    """Import hardware tokens; nothing is stored unless every line or key is right. With
    --directory, a token for a user the directory does not know is a problem too."""
    from .cli_support import load_directory, security_info

    if (csv_file is None) == (pskc_file is None):
        raise click.UsageError("give exactly one of --csv and --pskc")
    if key_hex is not None and pskc_file is None:
        raise click.UsageError("--key goes with --pskc")
    key = _key(key_hex)
    if pskc_file is not None:
        from .extras import missing_extra

        if (absent := missing_extra("pskc")) is not None:
            raise click.ClickException(f"--pskc {absent}")
    with security_info(config_file, load_directory(directory_spec)) as (_, info):
        service = info.hardware_oath
        if csv_file is not None:
            result = service.import_file(csv_text=csv_file.read_text(encoding="utf-8-sig"))
        else:
            assert pskc_file is not None
            result = service.import_file(
                pskc_data=pskc_file.read_bytes(), key=key, default_user=user
            )
    if as_json:
        problems = [{"source": p.source, "message": p.message} for p in result.problems]
        answer = {"ok": result.ok, "imported": list(result.imported), "problems": problems}
        click.echo(json.dumps(answer, indent=2))
        sys.exit(0 if result.ok else 1)
    for problem in result.problems:
        click.echo(f"error: {problem}", err=True)
    if not result.ok:
        click.echo(f"{len(result.problems)} problem(s): nothing was imported", err=True)
        sys.exit(1)
    click.echo(f"imported {len(result.imported)} token(s): {', '.join(result.imported)}")
