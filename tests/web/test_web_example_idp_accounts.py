"""Every demo account is listed where a visitor looks for it (issue 19.3): the login page, the
start-up banner and docs/example-idp.md, each with what it shows."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from example_idp.__main__ import DEMO_ACCOUNTS

ROOT = Path(__file__).parents[2]
USERS = [u["id"] for u in tomllib.loads((ROOT / "example_idp/directory.toml").read_text())["users"]]


def test_the_demo_has_an_account_per_trigger() -> None:
    assert {"alice", "admin", "breakglass", "carol", "dave", "erin", "frank", "grace"} <= set(USERS)


@pytest.mark.parametrize("user", USERS)
def test_the_login_page_lists_every_account(user: str) -> None:
    template = (ROOT / "example_idp/templates/example_idp/login.html").read_text()
    assert f"<code>{user}</code>/<code>{user}</code>" in template


@pytest.mark.parametrize("user", USERS)
def test_docs_and_the_banner_list_every_account(user: str) -> None:
    docs = (ROOT / "docs/example-idp.md").read_text()
    table = docs.split("## Demo accounts", 1)[1].split("\n\n", 2)[1]
    assert re.search(rf"^\| `{user}` / `{user}` \|", table, re.M), table
    assert re.search(rf"^  {user} / {user} ", DEMO_ACCOUNTS, re.M)
