"""Requests the middleware does not own: wrapped host versus the bare host, in one process.

Budget: at most 1.03x. Both apps are called as WSGI callables with the same environ (no server, so
the figure is the middleware's own cost, not network noise); batches alternate between the two
(paired, the first side swapped every batch) and the median batch ratio is reported.

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


class NoAuthorization:
    """The authorization endpoint contract; the pass-through benchmark never reaches it."""

    def error_response(self, environ: Any, params: Any, error: str, description: str) -> Any:
        raise NotImplementedError

    def effective_params(self, environ: Any, params: Any) -> Any:
        return params


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
    parser.add_argument("--requests", type=int, default=500, help="requests per batch")
    parser.add_argument("--rounds", type=int, default=201, help="paired batches")
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
    # One host app, called bare or through the middleware: the same objects and caches on both
    # sides, so the difference is the middleware alone.
    host = make_host()
    bare = host.wsgi_app
    wrapped_host = CombinedRegistration(
        host.wsgi_app, config=config, directory=NoDirectory(), authorization=NoAuthorization()
    )
    run(bare, 2000)
    run(wrapped_host, 2000)
    # Paired batches, alternating which side goes first, so drift in the machine's speed (other
    # processes, frequency scaling) hits both sides alike; the median batch ratio is reported.
    ratios, bare_total, wrapped_total = [], 0.0, 0.0
    for i in range(args.rounds):
        order = (bare, wrapped_host) if i % 2 == 0 else (wrapped_host, bare)
        times = {id(app): run(app, args.requests) for app in order}
        b, w = times[id(bare)], times[id(wrapped_host)]
        ratios.append(w / b)
        bare_total += b
        wrapped_total += w
    ratios.sort()
    median = ratios[len(ratios) // 2]
    b, w = bare_total / args.rounds, wrapped_total / args.rounds
    print(f"bare host:    {b * 1e6:8.2f} us/request")
    print(f"with wrapper: {w * 1e6:8.2f} us/request  (+{(w - b) * 1e9:.0f} ns)")
    verdict = "OK" if median <= 1.03 else "OVER BUDGET"
    print(
        f"ratio:        {median:8.3f}x   median of {args.rounds} paired batches (budget 1.03x)  {verdict}"
    )


if __name__ == "__main__":
    main()
