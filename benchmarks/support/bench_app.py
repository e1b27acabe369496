"""The WSGI apps the HTTP benchmarks serve with gunicorn (``bench_app:app``, ``bench_app:bare``).

``app``: oidc_combinedreg mounted on a tiny host (a login form, a toy authorization endpoint) with
a directory where every ``u<digits>`` user exists with password ``pw-u<digits>``; the config is the
TOML file named by ``BENCH_CONFIG``. ``bare``: a Flask app whose only view answers "ok", the
baseline a verify request is compared with. ``redis_floor``: the same view after as many round
trips to the Redis at ``BENCH_REDIS_URL`` as a verify makes there, nothing else: what any view
that keeps its state in that Redis pays before its own work. ``postgres_floor``: the same with
PostgreSQL (``BENCH_POSTGRES_DSN``), ``SELECT 1`` as many times as a verify makes round trips there.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import redis
from flask import Flask

from oidc_combinedreg import CombinedRegistration, DirectoryUser, PerUserMfa, load_config
from oidc_combinedreg.crypto import generate_key

_USER = re.compile(r"u\d{1,9}")


class BenchDirectory:
    def get_user(self, user_id: str) -> DirectoryUser | None:
        if not _USER.fullmatch(user_id):
            return None
        return DirectoryUser(
            id=user_id,
            display_name=user_id,
            email=f"{user_id}@bench.test",
            groups=frozenset({"staff"}),
            per_user_mfa=PerUserMfa.DISABLED,
        )

    def set_password(self, user_id: str, new_password: str) -> None:
        raise NotImplementedError

    def set_per_user_mfa(self, user_id: str, state: PerUserMfa) -> None:
        raise NotImplementedError


def password_of(user_id: str) -> str:
    return f"pw-{user_id}"


class BenchHost:
    """``POST /login`` (user, password, next), ``GET /authorize`` (a toy code once cleared)."""

    def __init__(self) -> None:
        self.reg: CombinedRegistration | None = None

    # The authorization endpoint contract (docs/integration.md): the benchmarks send no prompt=none.
    def error_response(self, environ: Any, params: Any, error: str, description: str) -> Any:
        raise NotImplementedError

    def effective_params(self, environ: Any, params: Any) -> Any:
        return params

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        assert self.reg is not None
        if path == "/login" and environ["REQUEST_METHOD"] == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            form = parse_qs(environ["wsgi.input"].read(min(size, 4096)).decode())
            user, password = form.get("username", [""])[0], form.get("password", [""])[0]
            next_url = form.get("next", ["/authorize"])[0]
            if not next_url.startswith("/authorize"):
                next_url = "/authorize"
            if _USER.fullmatch(user) and secrets.compare_digest(password, password_of(user)):
                self.reg.password_verified(environ, user)
                start_response("303 See Other", [("Location", next_url)])
                return [b""]
            start_response("401 Unauthorized", [("Content-Type", "text/plain")])
            return [b"wrong password"]
        if path == "/authorize":
            result = self.reg.sign_in_result(environ)
            if result is None:
                here = "/authorize?" + environ.get("QUERY_STRING", "")
                start_response("302 Found", [("Location", "/login?next=" + quote(here, safe=""))])
                return [b""]
            code = secrets.token_urlsafe(16)
            query = urlencode({"code": code, "amr": " ".join(result.amr)})
            start_response("302 Found", [("Location", "https://rp.bench.test/cb?" + query)])
            return [b""]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]


def make_app(config_path: str | os.PathLike[str]) -> CombinedRegistration:
    host = BenchHost()
    reg = CombinedRegistration(
        host, config=load_config(config_path), directory=BenchDirectory(), authorization=host
    )
    host.reg = reg
    return reg


def write_config(
    directory: Path, *, store: str, redis_url: str = "", key: str = "", postgres_dsn: str = ""
) -> Path:
    """The benchmark's combinedreg.toml: MFA registration enforced, authenticator apps first."""
    storage = (
        f'backend = "redis"\n[storage.redis]\nurl = "{redis_url}"\n'
        if store == "redis"
        else f'backend = "postgres"\n[storage.postgres]\ndsn = "{postgres_dsn}"\n'
        if store == "postgres"
        else f'backend = "sqlite"\n[storage.sqlite]\npath = "{directory / "reg.sqlite3"}"\n'
    )
    path = directory / "combinedreg.toml"
    path.write_text(
        '[general]\norganization = "Bench"\nenvironment = "development"\n'
        "[web]\nsecure_cookies = false\n"
        f"[storage]\n{storage}"
        f'[secrets]\nencryption_keys = ["{key or generate_key()}"]\n'
        '[policies]\nwizard_preference = ["totp"]\n'
        "[policies.mfa_registration]\nenforced = true\n"
    )
    return path


def _bare() -> Flask:
    flask_app = Flask("bare")

    @flask_app.get("/ok")
    def ok() -> str:
        return "ok"

    return flask_app


bare = _bare()

#: round trips of an MFA verify on one Redis server (tests/web/test_web_redis_round_trips.py)
VERIFY_ROUND_TRIPS = 2


def _redis_floor() -> Flask:
    flask_app = Flask("redis_floor")
    url = os.environ.get("BENCH_REDIS_URL")
    client = redis.Redis.from_url(url) if url else None

    @flask_app.get("/ok")
    def ok() -> str:
        assert client is not None, "BENCH_REDIS_URL is not set"
        for _ in range(VERIFY_ROUND_TRIPS):
            client.hget("bench:floor", "x")  # one at a time, as the verify's depend on each other
        return "ok"

    return flask_app


redis_floor = _redis_floor()

#: round trips of an MFA verify on PostgreSQL (tests/web/test_web_postgres_round_trips.py)
POSTGRES_VERIFY_ROUND_TRIPS = 2


def _postgres_floor() -> Flask:
    flask_app = Flask("postgres_floor")
    dsn = os.environ.get("BENCH_POSTGRES_DSN")
    local = threading.local()  # a connection per thread (gthread workers)

    @flask_app.get("/ok")
    def ok() -> str:
        assert dsn is not None, "BENCH_POSTGRES_DSN is not set"
        import psycopg

        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = psycopg.connect(dsn, autocommit=True)
        for _ in range(POSTGRES_VERIFY_ROUND_TRIPS):
            conn.execute("SELECT 1").fetchone()  # one at a time, as the verify's
        return "ok"

    return flask_app


postgres_floor = _postgres_floor()
_config = os.environ.get("BENCH_CONFIG")
#: None when imported by the benchmark process itself, for its helpers
app: Any = make_app(_config) if _config else None
