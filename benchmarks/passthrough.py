"""Requests the middleware does not own: wrapped host versus the bare host, in one process.

Budget: at most 1.03x. Both apps are called as WSGI callables with the same environ (no server, so
the figure is the middleware's own cost, not network noise); rounds alternate between the two so
drift in the machine's speed hits both alike, and the best round of each is compared.

    python benchmarks/passthrough.py [--requests N] [--rounds R]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path
from typing import Any

from flask import Flask

from oidc_combinedreg import CombinedRegistration, DirectoryUser, parse_config
from oidc_combinedreg.crypto import generate_key


class NoDirectory:
    def get_user(self, user_id: str) -> DirectoryUser | None:
        return None

    def set_password(self, user_id: str, new_password: str) -> None:
        raise NotImplementedError

    def set_per_user_mfa(self, user_id: str, state: Any) -> None:
        raise NotImplementedError


def make_host() -> Flask:
    app = Flask(__name__)

    @app.get("/hello")
    def hello() -> str:
        return "ok"

    return app


def environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/hello",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "localhost",
        "HTTP_COOKIE": "combinedreg=abc; other=1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


def run(app: Any, n: int) -> float:
    base = environ()
    t0 = time.perf_counter()
    for _ in range(n):
        env = dict(base)
        body = app(env, start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close:
            close()
    return (time.perf_counter() - t0) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    config = parse_config(
        {
            "general": {"environment": "development"},
            "web": {"secure_cookies": False},
            "secrets": {"encryption_keys": [generate_key()]},
            "storage": {"sqlite": {"path": str(tmp / "bench.sqlite3")}},
        }
    )
    bare = make_host()
    wrapped_host = make_host()
    wrapped_host.wsgi_app = CombinedRegistration(  # type: ignore[method-assign]
        wrapped_host.wsgi_app, config=config, directory=NoDirectory()
    )
    run(bare, 2000)
    run(wrapped_host, 2000)
    bare_times, wrapped_times = [], []
    for _ in range(args.rounds):
        bare_times.append(run(bare, args.requests))
        wrapped_times.append(run(wrapped_host, args.requests))
    b, w = min(bare_times), min(wrapped_times)
    print(f"bare host:    {b * 1e6:8.2f} us/request")
    print(f"with wrapper: {w * 1e6:8.2f} us/request")
    print(
        f"ratio:        {w / b:8.3f}x   (budget 1.03x)  {'OK' if w / b <= 1.03 else 'OVER BUDGET'}"
    )


if __name__ == "__main__":
    main()
