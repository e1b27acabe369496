"""``python -m example_idp --config FILE``: the demo with one's own middleware config, served for
real; a config with mistakes lists them (with their paths) and serves nothing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
[general]
organization = "Fabrikam"
environment = "development"
[web]
prefix = "/account-security"
secure_cookies = false
[secrets]
key_file = "keys"
generate_missing = true
[storage.sqlite]
path = "reg.sqlite3"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(config: Path, instance: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "example_idp", "--host", "127.0.0.1", "--port", str(port),
         "--config", str(config), "--instance", str(instance)],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _get_when_listening(proc: subprocess.Popen[str], url: str) -> requests.Response:
    """The banner is printed just before the socket listens: retry a refused connection."""
    for _ in range(300):
        try:
            return requests.get(url, timeout=10)
        except requests.ConnectionError:
            assert proc.poll() is None, "the demo exited"
            time.sleep(0.1)
    raise AssertionError(f"nothing listens at {url}")


def test_the_demo_serves_ones_own_config(tmp_path: Path) -> None:
    config = tmp_path / "mine.toml"
    config.write_text(CONFIG)
    port = _free_port()
    with _start(config, tmp_path / "instance", port) as proc:
        try:
            assert proc.stdout is not None
            lines = []
            for line in proc.stdout:  # the banner is printed before the server starts
                lines.append(line)
                if line.startswith("Example IdP:"):
                    break
            assert any(line.startswith("Example IdP:") for line in lines), lines
            base = f"http://127.0.0.1:{port}"
            css = _get_when_listening(proc, f"{base}/account-security/static/combinedreg.css")
            assert css.status_code == 200
            assert requests.get(f"{base}/security-info/static/combinedreg.css").status_code == 404
            assert (tmp_path / "keys").exists() and (tmp_path / "reg.sqlite3").exists()
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_a_config_with_mistakes_is_listed_and_nothing_is_served(tmp_path: Path) -> None:
    config = tmp_path / "mine.toml"
    config.write_text(CONFIG + "[throttle]\nwindow = 1\n[web.nope]\n")
    with _start(config, tmp_path / "instance", _free_port()) as proc:
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "error: throttle.window" in err
    assert "Traceback" not in err
    assert f"error(s) in {config}" in err
    assert "Example IdP:" not in out
