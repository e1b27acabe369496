"""Every key the config reader accepts is documented in docs/configuration.md.

The keys are not listed by hand: the reader itself says which keys it asked for (each table's
reader calls ``done()``, which knows the keys it read), while it parses the example IdP's config
and a config that takes every optional branch (Redis, SMTP, webhook, Twilio, admin tokens,
per-method policies, Web Push). A key is documented when the page names it in code, as a whole path
(`` `storage.sqlite.path` ``) or under a heading that names its table (`` `prefix` `` under
``## `[web]` ``), in the first column of a table or in prose.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from oidc_combinedreg.admin.auth import hash_token
from oidc_combinedreg.config import _parse
from oidc_combinedreg.config import reader as config_reader
from oidc_combinedreg.config.web_push import generate_vapid_keys
from oidc_combinedreg.crypto import generate_key

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"

EVERY_BRANCH = """
[general]
environment = "development"
[web]
secure_cookies = false
[storage]
backend = "redis"
[storage.redis]
url = "redis://127.0.0.1:1/0"
[storage.postgres]
dsn = "host=127.0.0.1 dbname=idp"
[secrets]
encryption_keys = ["{key}"]
[delivery.email]
provider = "smtp"
host = "127.0.0.1"
from = "a@example.com"
username = "idp"
password = "x"
[delivery.text]
provider = "webhook"
url = "https://sms.example.com/send"
secret = "0123456789abcdef0123"
[delivery.voice]
provider = "twilio"
[delivery.twilio]
account_sid = "AC1"
auth_token = "x"
from_number = "+14155550100"
[methods.push]
web_app = true
[methods.push.web_push]
vapid_private_key = "{vapid}"
subject = "mailto:it@example.com"
[policies.methods.email]
enabled = true
users = "selected"
include_groups = ["staff"]
[[admin.tokens]]
name = "ops"
hash = "{hash}"
user = "admin"
"""


def _accepted_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> set[str]:
    keys: set[str] = set()
    done = config_reader.Reader.done

    def recording_done(self: config_reader.Reader) -> None:
        keys.update(re.sub(r"\[\d+\]", "", self.key_path(k)) for k in self._seen)
        done(self)

    monkeypatch.setattr(config_reader.Reader, "done", recording_done)
    every = EVERY_BRANCH.format(
        key=generate_key(), hash=hash_token("t" * 43), vapid=generate_vapid_keys()[0]
    )
    example = ROOT / "example_idp" / "combinedreg.toml"
    for data, base in ((tomllib.loads(example.read_text()), example.parent),
                       (tomllib.loads(every), tmp_path)):  # fmt: skip
        _, problems = _parse(data, base, write=False)
        assert [p for p in problems if p.severity == "error"] == []
    # a table is documented by its heading or its keys; only its keys are asked for
    return {k for k in keys if not any(other.startswith(k + ".") for other in keys)}


def _table(span: str) -> str:
    """``[admin.tap] window`` -> ``admin.tap.window``; ``[[admin.tokens]]`` -> ``admin.tokens``."""
    match = re.fullmatch(r"\[\[?([\w.<>]+)\]\]?\s*(\w*)", span.strip())
    if match:
        return ".".join(part for part in match.groups() if part)
    return span.strip()


def _documented_paths(text: str) -> list[str]:
    """Every path the page names: spans as written, and under the tables of their heading."""
    paths: list[str] = []
    tables: list[str] = []
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        if line.startswith("#"):
            spans = [_table(s) for s in re.findall(r"`([^`]+)`", line)]
            tables = [s for s in spans if re.fullmatch(r"[\w.<>]+", s)]
            paths += tables + [f"{t}.{s}" for t in tables for s in tables if s != t]
            continue
        if line.startswith("|"):
            line = line.split("|")[1]  # the key column only, not values in the meaning
        spans = [_table(s) for s in re.findall(r"`([^`]+)`", line)]
        parents = [s.rsplit(".", 1)[0] for s in spans[:1] if "." in s]
        for span in spans:
            if not re.fullmatch(r"[\w.<>]+", span):
                continue
            paths += [span, *(f"{t}.{span}" for t in tables), *(f"{p}.{span}" for p in parents)]
    return paths


def _matches(key: str, path: str) -> bool:
    pattern = re.escape(path).replace(re.escape("<kind>"), r"\w+")
    return re.fullmatch(pattern, key) is not None


def test_every_key_the_reader_accepts_is_in_configuration_md(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keys = _accepted_keys(monkeypatch, tmp_path)
    assert {"web.prefix", "storage.redis.url", "policies.wizard_preference"} <= keys
    paths = _documented_paths(DOC.read_text())
    undocumented = sorted(k for k in keys if not any(_matches(k, p) for p in paths))
    assert not undocumented, f"not in {DOC.relative_to(ROOT)}: {', '.join(undocumented)}"
