"""What a host installs: the wheel's contents and metadata, and the wheel alone (no extras) in a
fresh virtualenv serving the plain-WSGI host on SQLite, with a real server and HTTP client."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path

import pytest
import requests
from wheel_support import ROOT, clean_env


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_the_wheel_ships_types_license_templates_catalogs_and_the_example(wheel: Path) -> None:
    names = _names(wheel)
    assert "oidc_combinedreg/py.typed" in names
    [license_file] = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    with zipfile.ZipFile(wheel) as zf:
        assert "BSD 3-Clause License" in zf.read(license_file).decode()
    src = ROOT / "oidc_combinedreg"
    for folder, pattern in (
        ("web/templates", "*.html"),
        ("web/translations", "*.po"),
        ("web/static", "*"),
    ):
        shipped = {p.relative_to(ROOT).as_posix() for p in (src / folder).rglob(pattern)}
        shipped = {n for n in shipped if (ROOT / n).is_file()}
        assert shipped, folder
        assert shipped <= names, sorted(shipped - names)
    for lang in ("de", "fr", "es", "ja", "ar"):
        assert f"oidc_combinedreg/web/translations/{lang}/LC_MESSAGES/messages.po" in names
    # the example IdP ships (decision 92): code, its templates, static files and seed TOML files
    example = ROOT / "example_idp"
    tracked = subprocess.run(
        ["git", "ls-files", "example_idp"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert {"example_idp/__main__.py", "example_idp/combinedreg.toml"} <= set(tracked)
    missing = [
        n for n in tracked if (example.parent / n).is_file() and n not in names
    ]  # files not yet committed are not asked for
    assert missing == []
    assert not [n for n in names if n.startswith("example_idp/instance/")]  # no keys, no db
    assert not [n for n in names if n.startswith("tests/")]


def test_the_metadata_keeps_extras_optional(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        [meta] = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        msg = Parser().parsestr(zf.read(meta).decode())
    assert msg["License-Expression"] == "BSD-3-Clause"
    assert msg.get_all("License-File") == ["LICENSE"]
    assert "Typing :: Typed" in msg.get_all("Classifier")
    assert msg["Author"] or msg["Author-email"]
    assert msg.get_all("Project-URL")
    requires = msg.get_all("Requires-Dist")
    unconditional = {
        r.split(";")[0].split("[")[0].split(">")[0].strip() for r in requires if ";" not in r
    }
    assert not unconditional & {"redis", "phonenumbers", "python-pskc", "defusedxml", "flask"}
    assert {"redis", "phone", "pskc", "example", "all"} <= set(msg.get_all("Provides-Extra"))


def test_the_sdist_has_license_and_security_policy(sdist: Path) -> None:
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    assert {"LICENSE", "SECURITY.md", "oidc_combinedreg/py.typed"} <= names


def _run(python: Path, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-c", code], cwd=cwd, env=clean_env(), capture_output=True, text=True
    )


def test_the_fresh_venv_has_no_extras(fresh_venv: Path, tmp_path: Path) -> None:
    done = _run(
        fresh_venv,
        "import importlib.util as u, oidc_combinedreg as o;"
        "print(o.__file__);"
        "print([m for m in ('redis','phonenumbers','pskc','defusedxml','flask') if u.find_spec(m)])",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    where, found = done.stdout.split("\n")[:2]
    assert where.startswith(str(fresh_venv.parent.parent))  # the installed copy, not the tree
    assert found == "[]"


SERVE = """
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

from plain_wsgi_host import DictDirectory, make_app

from oidc_combinedreg import load_config


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


reg, _ = make_app(load_config(sys.argv[1]), DictDirectory())
server = make_server("127.0.0.1", 0, reg, handler_class=Quiet)
print(server.server_port, flush=True)
server.serve_forever()
"""

CONFIG = """
[general]
environment = "development"
[web]
secure_cookies = false
[secrets]
key_file = "combinedreg.keys"
generate_missing = true
[storage.sqlite]
path = "reg.sqlite3"
[policies.mfa_registration]
enforced = true
"""


@pytest.fixture
def served(fresh_venv: Path, tmp_path: Path) -> Iterator[str]:
    shutil.copy(ROOT / "examples" / "plain_wsgi_host.py", tmp_path)
    (tmp_path / "serve.py").write_text(SERVE)
    (tmp_path / "combinedreg.toml").write_text(CONFIG)
    with subprocess.Popen(
        [str(fresh_venv), "serve.py", "combinedreg.toml"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            port = proc.stdout.readline().strip()
            if not port:
                proc.wait(timeout=30)
                pytest.fail(f"the host did not start:\n{proc.stderr.read()}")
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_the_wheel_without_extras_serves_the_plain_wsgi_host_on_sqlite(
    served: str, tmp_path: Path
) -> None:
    """Password sign-in, then the middleware's wizard: its templates, static files and the German
    catalog come from the installed wheel."""
    with requests.Session() as http:
        _sign_in_to_the_wizard(http, served, tmp_path)


def _sign_in_to_the_wizard(http: requests.Session, served: str, tmp_path: Path) -> None:
    http.headers["Accept-Language"] = "de"
    url = f"{served}/authorize?client_id=demo&response_type=code&scope=openid&state=s1"
    r = http.get(url, allow_redirects=True)
    assert r.url.startswith(f"{served}/login?")
    r = http.post(r.url, data={"username": "alice", "password": "alice-password"})
    assert r.status_code == 200, r.text
    assert "/security-info/wizard" in r.url
    assert '<html lang="de"' in r.text
    assert "Schützen Sie Ihr Konto" in r.text  # "Keep your account secure", from the .po
    css = http.get(f"{served}/security-info/static/combinedreg.css")
    assert css.status_code == 200 and "{" in css.text
    assert (tmp_path / "reg.sqlite3").exists()
    assert (tmp_path / "combinedreg.keys").exists()


def test_a_redis_config_without_the_extra_names_it_in_the_fresh_venv(
    fresh_venv: Path, tmp_path: Path
) -> None:
    config = tmp_path / "redis.toml"
    config.write_text(
        CONFIG.replace("[storage.sqlite]", '[storage]\nbackend = "redis"\n[storage.sqlite]')
        + '[storage.redis]\nurl = "redis://127.0.0.1:1/0"\n'
    )
    combinedreg = fresh_venv.parent / "combinedreg"
    done = subprocess.run(
        [str(combinedreg), "check-config", str(config)],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "storage.backend" in done.stderr
    assert 'pip install "oidc-combinedreg[redis]"' in done.stderr
    assert "Traceback" not in done.stderr
    # and at start-up, the same error before anything is served
    started = _run(
        fresh_venv, f"import oidc_combinedreg as o; o.load_config({str(config)!r})", tmp_path
    )
    assert started.returncode == 1
    assert 'pip install "oidc-combinedreg[redis]"' in started.stderr


def test_hosts_type_checkers_see_the_types(fresh_venv: Path, tmp_path: Path) -> None:
    """py.typed: mypy reads the installed package's annotations instead of ``Any``."""
    (tmp_path / "host.py").write_text(
        "from oidc_combinedreg import load_config\n"
        "config = load_config('x.toml')\n"
        "reveal_type(config.web.prefix)\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--python-executable",
            str(fresh_venv),
            "--no-incremental",
            "host.py",
        ],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    assert "missing library stubs or py.typed marker" not in done.stdout
    assert 'Revealed type is "str"' in done.stdout, done.stdout


def test_the_example_extra_runs_the_example_idp_from_the_wheel(
    example_venv: Path, tmp_path: Path
) -> None:
    """``pip install "oidc-combinedreg[example]"`` then ``python -m example_idp`` (decision 92):
    the IdP's discovery document and the middleware's pages are served from the installed copy."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [str(example_venv), "-m", "example_idp", "--host", "127.0.0.1",
               "--port", str(port), "--instance", str(tmp_path / "instance")]  # fmt: skip
    env = {**clean_env(), "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            for line in proc.stdout:
                if line.startswith("Example IdP:"):
                    break
            else:
                pytest.fail(f"the example IdP did not start:\n{proc.stderr.read()}")
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):  # the banner comes just before the socket listens
                try:
                    discovery = requests.get(f"{base}/.well-known/openid-configuration", timeout=10)
                    break
                except requests.ConnectionError:
                    assert proc.poll() is None
                    time.sleep(0.1)
            assert discovery.status_code == 200
            assert discovery.json()["issuer"] == f"http://localhost:{port}"
            css = requests.get(f"{base}/security-info/static/combinedreg.css", timeout=10)
            assert css.status_code == 200
            login = requests.get(f"{base}/login", timeout=10)
            assert login.status_code == 200 and "<form" in login.text  # its own templates
        finally:
            proc.terminate()
            proc.wait(timeout=30)
