"""A Redis that forgets on restart (no AOF, no RDB snapshots) loses every registered method:
the start refuses it in production, warns in development, and says nothing when the operator
declared it intended (``[storage.redis] allow_no_persistence = true``); ``check-config`` gives
the same answer. Real ``redis-server`` processes, each configured as the case needs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from redis_servers import RedisCluster3, RedisServer, free_port

from oidc_combinedreg import ConfigError, parse_config
from oidc_combinedreg.cli import main
from oidc_combinedreg.clock import SystemClock
from oidc_combinedreg.crypto import generate_key
from oidc_combinedreg.store.factory import open_store

KEY = generate_key()
NO_PERSISTENCE = "expected a Redis that keeps its data across a restart"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Any]:
    started: list[RedisServer] = []

    def start(*extra: str) -> RedisServer:
        server = RedisServer(tmp_path / f"r{len(started)}", extra=extra).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def config(url: str, environment: str = "production", **redis: Any) -> dict[str, Any]:
    return {
        "general": {"environment": environment},
        "web": {"secure_cookies": True},
        "secrets": {"encryption_keys": [KEY]},
        "storage": {"backend": "redis", "redis": {"url": url, **redis}},
    }


def open_with(data: dict[str, Any]) -> None:
    store = open_store(parse_config(data).storage, clock=SystemClock())
    store.close()  # type: ignore[attr-defined]


def test_production_refuses_a_redis_without_persistence(servers: Any) -> None:
    server = servers()  # --save '' --appendonly no
    with pytest.raises(ConfigError) as refused:
        open_with(config(server.url))
    [problem] = refused.value.problems
    assert problem.path == "storage.redis.url" and problem.severity == "error"
    assert NO_PERSISTENCE in problem.message
    assert f"127.0.0.1:{server.port}: save '' and appendonly no" in problem.message
    assert "allow_no_persistence = true" in problem.message


def test_the_operator_can_say_it_is_intended(
    servers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = servers()
    with caplog.at_level(logging.WARNING):
        open_with(config(server.url, allow_no_persistence=True))
    assert not [r for r in caplog.records if NO_PERSISTENCE in r.getMessage()]


def test_development_warns_and_starts(servers: Any, caplog: pytest.LogCaptureFixture) -> None:
    server = servers()
    with caplog.at_level(logging.WARNING):
        open_with(config(server.url, "development"))
    assert [r for r in caplog.records if NO_PERSISTENCE in r.getMessage()]


@pytest.mark.parametrize(
    "extra",
    [("--appendonly", "yes"), ("--save", "3600 1")],
    ids=["aof", "rdb snapshots"],
)
def test_a_persistent_redis_starts_in_production(
    servers: Any, caplog: pytest.LogCaptureFixture, extra: tuple[str, ...]
) -> None:
    server = servers(*extra)
    with caplog.at_level(logging.WARNING):
        open_with(config(server.url))
    assert not [r for r in caplog.records if "persistence" in r.getMessage()]


def test_config_disabled_uses_info_persistence(servers: Any) -> None:
    """Managed services rename CONFIG away: AOF still shows in INFO persistence; without it the
    answer is "cannot tell", which production refuses unless the operator says otherwise."""
    aof = servers("--rename-command", "CONFIG", "", "--appendonly", "yes")
    open_with(config(aof.url))
    bare = servers("--rename-command", "CONFIG", "")
    with pytest.raises(ConfigError, match="CONFIG refused") as refused:
        open_with(config(bare.url))
    assert "RDB snapshots cannot be seen without CONFIG" in str(refused.value)
    open_with(config(bare.url, allow_no_persistence=True))


def test_an_unreachable_server_starts_and_fails_closed_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        store = open_store(
            parse_config(config(f"redis://127.0.0.1:{free_port()}/0")).storage,
            clock=SystemClock(),
        )
    store.close()  # type: ignore[attr-defined]
    assert any("could not check" in r.getMessage() for r in caplog.records)


def test_every_cluster_primary_is_asked(redis_cluster: RedisCluster3) -> None:
    with pytest.raises(ConfigError) as refused:
        open_with(config(redis_cluster.url, cluster=True))
    message = str(refused.value)
    for node in redis_cluster.nodes:
        assert f"127.0.0.1:{node.port}: save '' and appendonly no" in message


# -- check-config: the same answer before the start -----------------------------------------------


def check(tmp_path: Path, url: str, environment: str, extra: str = "") -> tuple[int, str]:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[general]\nenvironment = "{environment}"\n[web]\nsecure_cookies = true\n'
        f'[secrets]\nencryption_keys = ["{KEY}"]\n'
        f'[storage]\nbackend = "redis"\n[storage.redis]\nurl = "{url}"\n{extra}'
    )
    result = CliRunner().invoke(main, ["check-config", str(path)])
    return result.exit_code, result.output


def test_check_config_asks_the_server(servers: Any, tmp_path: Path) -> None:
    bare = servers()
    code, output = check(tmp_path, bare.url, "production")
    assert code == 1 and f"error: storage.redis.url: {NO_PERSISTENCE}" in output
    code, output = check(tmp_path, bare.url, "development")
    assert code == 0 and f"warning: storage.redis.url: {NO_PERSISTENCE}" in output
    code, output = check(tmp_path, bare.url, "production", "allow_no_persistence = true\n")
    assert code == 0 and "persistence" not in output
    aof = servers("--appendonly", "yes")
    code, output = check(tmp_path, aof.url, "production")
    assert code == 0 and "persistence" not in output
    code, output = check(tmp_path, f"redis://127.0.0.1:{free_port()}/0", "production")
    assert code == 0 and "warning: storage.redis.url: could not check" in output


def test_the_key_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"storage\.redis\.allow_no_persistence"):
        parse_config(config("redis://127.0.0.1:1/0", allow_no_persistence="yes"))


def test_a_command_that_opens_the_store_says_so_without_a_traceback(
    servers: Any, tmp_path: Path
) -> None:
    bare = servers()
    path = tmp_path / "c.toml"
    path.write_text(
        f'[general]\nenvironment = "production"\n[secrets]\nencryption_keys = ["{KEY}"]\n'
        f'[storage]\nbackend = "redis"\n[storage.redis]\nurl = "{bare.url}"\n'
    )
    result = CliRunner().invoke(main, ["flush-notifications", "--config", str(path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"error: storage.redis.url: {NO_PERSISTENCE}" in result.output
