"""docs/quickstart.md's minimal config is a config a new host can start with: no errors, one
warning (the registration policy it tells you to add), and the settings it says; its install
lines name only extras the package declares."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from oidc_combinedreg import check_config, load_config
from oidc_combinedreg.crypto import generate_key

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = (ROOT / "docs" / "quickstart.md").read_text()


def _block(heading: str, lang: str) -> str:
    section = QUICKSTART.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(rf"```{lang}\n(.*?)```", section, re.S)
    assert match, f"no {lang} block under {heading!r}"
    return match.group(1)


def test_the_minimal_config_starts_with_one_warning(tmp_path: Path) -> None:
    text = _block("A minimal config", "toml")
    assert len([line for line in text.splitlines() if line.strip()]) <= 16
    path = tmp_path / "combinedreg.toml"
    path.write_text(text)
    (tmp_path / "combinedreg.keys").write_text(generate_key() + "\n")
    problems = check_config(path)
    assert [p.severity for p in problems] == ["warning"]
    assert problems[0].path == "conditional_access"
    config = load_config(path)
    assert config.general.organization == "Contoso"
    assert config.web.login_url == "/login"
    assert config.storage.sqlite_path == str(tmp_path / "combinedreg.sqlite3")
    assert config.policies.mfa_registration.enforced


def test_the_install_lines_name_declared_extras() -> None:
    declared = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    named = set(re.findall(r"oidc-combinedreg\[(\w+)\]", _block("Install", "sh")))
    assert named and named <= declared
    assert {"redis", "phone", "pskc"} <= named
