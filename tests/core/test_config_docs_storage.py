"""docs/configuration.md documents every ``[storage]`` and ``[storage.redis]`` key the config
reader accepts (issue 23.8: the Redis keys were documented nowhere in it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from oidc_combinedreg import parse_config
from oidc_combinedreg.config.reader import Reader
from oidc_combinedreg.crypto import generate_key

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _keys_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, set[str]]:
    """The keys each table's reader asked for (whether present or not), by table path."""
    pytest.importorskip("redis")  # backend = "redis" needs the extra
    read: dict[str, set[str]] = {}
    done = Reader.done

    def recording_done(self: Reader) -> None:
        read.setdefault(self.path, set()).update(self._seen)
        done(self)

    monkeypatch.setattr(Reader, "done", recording_done)
    data: dict[str, Any] = {
        "general": {"environment": "development"},
        "secrets": {"encryption_keys": [generate_key()]},
        "storage": {"backend": "redis", "redis": {"url": "redis://127.0.0.1:6379/0"}},
    }
    parse_config(data, base_dir=tmp_path)
    return read


def _section(heading: str) -> str:
    text = DOC.read_text()
    start = text.index(heading)
    rest = text[start + len(heading) :]
    end = re.search(r"^#{2,3} ", rest, re.M)
    return rest[: end.start()] if end else rest


def test_every_storage_redis_key_is_documented(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    read = _keys_read(monkeypatch, tmp_path)
    redis_keys = read["storage.redis"]
    assert {"url", "key_prefix", "audit_retention_days", "audit_maxlen"} <= redis_keys
    table = _section("### `[storage.redis]`")
    missing = sorted(k for k in redis_keys if f"| `{k}` |" not in table)
    assert missing == [], f"docs/configuration.md [storage.redis] lacks {missing}"


def test_every_storage_key_is_documented_and_redis_is_a_backend(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    read = _keys_read(monkeypatch, tmp_path)
    table = _section("## `[storage]`")
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", table, re.M))
    expected = {k for k in read["storage"] if k not in ("sqlite", "redis")}
    expected |= {f"sqlite.{k}" for k in read["storage.sqlite"]}
    assert expected <= documented, sorted(expected - documented)
    backend = next(line for line in table.splitlines() if line.startswith("| `backend` |"))
    assert '`"redis"`' in backend and "[storage.redis]" in backend
