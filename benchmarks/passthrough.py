"""Requests the middleware does not own: wrapped host versus the bare host, in one process.

Budget: at most 1.03x. Both apps are called as WSGI callables with the same environ (no server, so
the figure is the middleware's own cost, not network noise); batches alternate between the two
(paired, the first side swapped every batch) and the median batch ratio is reported. Measured
twice: with the default config, and with the authenticator web app on an origin of its own
(``[methods.push] web_app_origin``: every request's ``Host`` is checked against it, decision 228).

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

from oidc_combinedreg import CombinedRegistration, Config, DirectoryUser, parse_config
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


def config_for(tmp: Path, **extra: Any) -> Config:
    return parse_config(
        {
            "general": {"environment": "development"},
            "web": {"secure_cookies": False},
            "secrets": {"encryption_keys": [generate_key()]},
            "storage": {"sqlite": {"path": str(tmp / "bench.sqlite3")}},
            **extra,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per batch")
    parser.add_argument("--rounds", type=int, default=201, help="paired batches")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    # One host app, called bare or through the middleware: the same objects and caches on both
    # sides, so the difference is the middleware alone. Twice: as configured by default, and
    # with the authenticator web app on an origin of its own, which every request is checked
    # against (its Host).
    host = make_host()
    bare = host.wsgi_app
    sides = {
        "default config": config_for(tmp),
        "web app on its own origin": config_for(
            tmp,
            methods={"push": {"web_app": True, "web_app_origin": "https://app.example.com"}},
        ),
    }
    wrapped = {
        name: CombinedRegistration(
            host.wsgi_app, config=config, directory=NoDirectory(), authorization=NoAuthorization()
        )
        for name, config in sides.items()
    }
    run(bare, 2000)
    for app in wrapped.values():
        run(app, 2000)
    # Batches alternate between the bare host and each wrapped one, which goes first swapped
    # every batch, so drift in the machine's speed (other processes, frequency scaling) hits
    # both sides alike; the median batch ratio is reported.
    ratios: dict[str, list[float]] = {name: [] for name in wrapped}
    totals = {name: [0.0, 0.0] for name in wrapped}
    for i in range(args.rounds):
        for name, app in wrapped.items():
            order = (bare, app) if i % 2 == 0 else (app, bare)
            times = {id(side): run(side, args.requests) for side in order}
            b, w = times[id(bare)], times[id(app)]
            ratios[name].append(w / b)
            totals[name][0] += b
            totals[name][1] += w
    for name in wrapped:
        values = sorted(ratios[name])
        median = values[len(values) // 2]
        b, w = totals[name][0] / args.rounds, totals[name][1] / args.rounds
        verdict = "OK" if median <= 1.03 else "OVER BUDGET"
        print(f"{name}:")
        print(f"  bare host:    {b * 1e6:8.2f} us/request")
        print(f"  with wrapper: {w * 1e6:8.2f} us/request  (+{(w - b) * 1e9:.0f} ns)")
        print(
            f"  ratio:        {median:8.3f}x   median of {args.rounds} paired batches"
            f" (budget 1.03x)  {verdict}"
        )


if __name__ == "__main__":
    main()
