"""CPU per request of each request of a whole sign-in through the example IdP, in process
(Flask's test client, SQLite stores): what each of its requests costs (5 since decision 226),
and which to profile.

    python benchmarks/example_idp_signin_cpu.py [--sign-ins 100] [--rounds 3]
                                                [--profile "5 GET /authorize"]

The sign-in is the one benchmarks/example_idp_flow.py measures under gunicorn, made the same way
(its directory, config and near-free password hash: argon2id 8 KiB, t=1, p=1): a user of the
demo's employees group with an authenticator app gets the sign-in form at the authorization
request (decision 217), posts the password, is sent to the MFA page, posts the code and comes back to
/authorize for the code. CPU time (``time.process_time``) per request, the median and the least
of ``--rounds`` rounds (the least moves least on a shared machine), beside a bare Flask "ok"
GET through the same kind of client; then the same for the WSGI application alone (what a
server such as gunicorn calls: the test client's own work, building the environ and reading the
response, left out), the bare app's beside it. ``--profile`` prints cProfile's top entries for
one step (named as printed, e.g. "2 POST /login"). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import html
import pstats
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import pyotp  # noqa: E402
from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402

from benchmarks import example_idp_flow as flow  # noqa: E402
from example_idp import create_app  # noqa: E402
from example_idp.app import settle_loaded_objects  # noqa: E402

HOST = "http://127.0.0.1"


def _hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    if found is None:
        raise RuntimeError(f"no {name} on the page: {page[:300]!r}")
    return html.unescape(found.group(1))


class SignIns:
    """The example IdP on SQLite with ``users`` employees, each with an authenticator app."""

    def __init__(self, folder: Path, users: int) -> None:
        directory = folder / "directory.toml"
        flow.USERS = users
        flow.write_directory(directory, flow.NEAR_FREE.hasher())
        idp = folder / "idp"
        idp.mkdir()
        config = flow.write_config(idp, flow.STORES["sqlite"](idp, ""))
        settings = flow.write_settings(idp, flow.NEAR_FREE)
        self.app = create_app(instance_path=idp / "instance", issuer=HOST,
                              combinedreg_config=config, settings_path=settings,
                              directory_path=directory)  # fmt: skip
        client = self.app.test_client()
        reg = client.post("/register", json={"redirect_uris": [flow.REDIRECT_URI]})
        assert reg.status_code == 201, reg.get_data(True)
        self.client_id: str = reg.get_json()["client_id"]
        # The flow benchmark's user preparation, on this app's store and key.
        helper = flow.Idp.__new__(flow.Idp)
        helper.reg, helper.next_user = self.app.extensions["example_idp"].registration, 0
        self.users = [(user, helper.add_totp(user)[0]) for user in helper.take_users(users)]
        self.clock = helper.reg.clock
        #: CPU seconds of each call of the WSGI application itself (its body read included)
        self.app_cpu: list[float] = []
        self.app.wsgi_app = _timed(self.app.wsgi_app, self.app_cpu)  # type: ignore[method-assign]

    def sign_in(self, user: str, secret: str, cpu: dict[str, list[float]] | None,
                profile: tuple[str, cProfile.Profile] | None = None,
                app_cpu: dict[str, list[float]] | None = None) -> int:  # fmt: skip
        """One whole sign-in; each request's CPU seconds appended to ``cpu[step]``, the WSGI
        application's own to ``app_cpu[step]``."""
        browser = self.app.test_client()
        count = 0

        def send(method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:  # fmt: skip
            nonlocal count
            count += 1
            step = f"{count} {method} {urlsplit(path).path}"
            profiler = profile[1] if profile is not None and profile[0] == step else None
            if profiler is not None:
                profiler.enable()
            start = time.process_time()
            if method == "POST":
                response = browser.post(path, data=form)
            else:
                response = browser.get(path)
            spent = time.process_time() - start
            if profiler is not None:
                profiler.disable()
            if cpu is not None:
                cpu.setdefault(step, []).append(spent)
            if app_cpu is not None:
                app_cpu.setdefault(step, []).append(self.app_cpu[-1])
            location = response.headers.get("Location", "")
            for prefix in (HOST, "http://localhost"):
                location = location.removeprefix(prefix)
            return response.status_code, location, response.get_data(as_text=True)

        here = flow.authorize_path(self.client_id)
        status, location, page = send("GET", here)
        while not location.startswith(flow.REDIRECT_URI):
            if status in (301, 302, 303, 307):
                here = location
                status, location, page = send("GET", here)
            elif 'name="password"' in page:
                form = {"csrf_token": _hidden(page, "csrf_token"), "username": user,
                        "password": flow.PASSWORD, "next": _hidden(page, "next")}  # fmt: skip
                status, location, page = send("POST", "/login", form)
            elif 'name="code"' in page:
                form = {"action": "verify", "csrf_token": _hidden(page, "csrf_token"),
                        "method_id": _hidden(page, "method_id"),
                        "code": pyotp.TOTP(secret).at(self.clock.now())}  # fmt: skip
                status, location, page = send("POST", here, form)  # the page posts to itself
            else:
                raise RuntimeError(f"sign-in of {user} stuck at {status}: {page[:400]!r}")
        if "code=" not in location:
            raise RuntimeError(f"sign-in of {user} ended without a code: {location}")
        return count


def _timed(app: WSGIApplication, spent: list[float]) -> WSGIApplication:
    def timed(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start = time.process_time()
        body = b"".join(app(environ, start_response))
        spent.append(time.process_time() - start)
        return [body]

    return timed


def _print_steps(title: str, base: list[float], steps: dict[str, list[float]],
                 totals: list[float]) -> None:  # fmt: skip
    mid = statistics.median(base)
    print(f"  {title:<34} {mid * 1000:6.3f} / {min(base) * 1000:6.3f} ms")
    for step, values in steps.items():
        med = statistics.median(values)
        print(f"  {step:<34} {med * 1000:6.3f} / {min(values) * 1000:6.3f} ms"
              f"   ({med / mid:4.1f}x the bare GET)")  # fmt: skip
    whole = statistics.median(totals)
    print(f"  {'whole sign-in':<34} {whole * 1000:6.3f} / {min(totals) * 1000:6.3f} ms"
          f"   ({whole / (mid * len(steps)):4.1f}x a bare flow of as many GETs)")  # fmt: skip


def cpu_of(run: Callable[[], object], count: int) -> float:
    start = time.process_time()
    for _ in range(count):
        run()
    return (time.process_time() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sign-ins", type=int, default=100, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", help='one step, as printed (e.g. "5 GET /authorize")')
    args = parser.parse_args()
    warm = 20
    with tempfile.TemporaryDirectory() as tmp:
        subject = SignIns(Path(tmp), warm + args.sign_ins * args.rounds)
        bare: FlaskClient = Flask("bare").test_client()
        bare.application.add_url_rule("/ok", "ok", lambda: "ok")
        bare_app_cpu: list[float] = []
        bare.application.wsgi_app = _timed(bare.application.wsgi_app, bare_app_cpu)  # type: ignore[method-assign]
        users = iter(subject.users)
        for _ in range(warm):  # imports, templates, first connections
            subject.sign_in(*next(users), None)
            bare.get("/ok")
        settle_loaded_objects()  # as the served app does (decision 223)
        if args.profile:
            profiler = cProfile.Profile()
            for _ in range(args.sign_ins):
                subject.sign_in(*next(users), None, (args.profile, profiler))
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(50)
            return
        steps: dict[str, list[float]] = {}
        app_steps: dict[str, list[float]] = {}
        bare_rounds: list[float] = []
        bare_app_rounds: list[float] = []
        totals: list[float] = []
        app_totals: list[float] = []
        for _ in range(args.rounds):
            bare_app_cpu.clear()
            bare_rounds.append(cpu_of(lambda: bare.get("/ok"), args.sign_ins * 8))
            bare_app_rounds.append(sum(bare_app_cpu) / len(bare_app_cpu))
            cpu: dict[str, list[float]] = {}
            app_cpu: dict[str, list[float]] = {}
            for _ in range(args.sign_ins):
                subject.sign_in(*next(users), cpu, app_cpu=app_cpu)
            for measured, into, whole in ((cpu, steps, totals), (app_cpu, app_steps, app_totals)):
                for step, values in measured.items():
                    into.setdefault(step, []).append(sum(values) / len(values))
                whole.append(sum(sum(v) for v in measured.values()) / args.sign_ins)
        print(f"CPU per request in process (median / least of {args.rounds} rounds of "
              f"{args.sign_ins} sign-ins; {len(steps)} requests per sign-in):")  # fmt: skip
        _print_steps("bare Flask GET", bare_rounds, steps, totals)
        print("The WSGI application alone (without the test client's work):")
        _print_steps("bare Flask app", bare_app_rounds, app_steps, app_totals)


if __name__ == "__main__":
    main()
