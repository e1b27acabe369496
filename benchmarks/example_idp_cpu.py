"""CPU per request through the example IdP, in process (Flask's test client, SQLite stores):
the MFA verify POST (a TOTP code) and the final /authorize that issues the code.

    python benchmarks/example_idp_cpu.py [--requests 200] [--profile verify|issue]

CPU time (``time.process_time``: this process, all its threads), not wall time or throughput: the
machine is shared, and CPU time does not count the time other processes take. Each figure is the
median of ``--rounds`` rounds of ``--requests`` requests. The test client's own cost (building the
WSGI environ, reading the response) is inside the figures, as a bare Flask "ok" view through the
same client shows (printed first). ``--profile`` prints cProfile's top entries for one kind.

The verify POST: a user at the MFA step with an authenticator app (stored through the package's
API, as benchmarks/mfa_verify.py does), a real success (303) each time; the clock (a FrozenClock)
moves 30 s on between requests, so replay protection accepts each code. Code issuance: the
break-glass user (password only, excluded from every interrupt) signed in once, then one new
authorization request (its own nonce) per measured request, answered with a code (302).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import pyotp  # noqa: E402
from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402

from example_idp import create_app  # noqa: E402
from example_idp.app import settle_loaded_objects  # noqa: E402
from oidc_combinedreg.clock import FrozenClock  # noqa: E402
from oidc_combinedreg.crypto import random_id  # noqa: E402
from oidc_combinedreg.methods.kinds import MethodKind  # noqa: E402
from oidc_combinedreg.service.base import secret_context  # noqa: E402
from oidc_combinedreg.store.base import MethodRecord  # noqa: E402

REDIRECT_URI = "https://rp.example/cb"


def make_idp(folder: Path, clock: FrozenClock) -> Flask:
    config = shutil.copy(ROOT / "example_idp" / "combinedreg.toml", folder / "combinedreg.toml")
    return create_app(instance_path=folder / "instance", combinedreg_config=config, clock=clock)


def csrf(client: FlaskClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(True))
    assert found is not None, path
    return found.group(1)


def login(client: FlaskClient, user: str, next_url: str) -> str:
    """The password form sent; the answer's ``Location`` (the step's page, decision 226)."""
    form = {"csrf_token": csrf(client, "/login"), "username": user, "password": user,
            "next": next_url}  # fmt: skip
    response = client.post("/login", data=form)
    assert response.status_code == 302, response.status_code
    return response.headers["Location"]


def authorize_url(client_id: str) -> str:
    params = {"client_id": client_id, "response_type": "code", "scope": "openid profile email",
              "redirect_uri": REDIRECT_URI, "state": "st", "nonce": random_id()}  # fmt: skip
    return "/authorize?" + urlencode(params)


def cpu_of(run: Callable[[], None], count: int) -> float:
    """CPU seconds per call of ``run``, over ``count`` calls."""
    start = time.process_time()
    for _ in range(count):
        run()
    return (time.process_time() - start) / count


class Subject:
    """The example IdP with a registered client, and the two requests to measure."""

    def __init__(self, folder: Path) -> None:
        self.clock = FrozenClock(time.time())
        self.app = make_idp(folder, self.clock)
        self.client = self.app.test_client()
        reg = self.client.post("/register", json={"redirect_uris": [REDIRECT_URI]})
        assert reg.status_code == 201, reg.get_data(True)
        self.client_id = reg.get_json()["client_id"]
        self.reg: Any = self.app.extensions["example_idp"].registration
        self.secret = pyotp.random_base32(32)
        self.method_id = self._add_totp("alice")
        login(self.client, "breakglass", "/")
        self.bare = Flask("bare").test_client()
        self.bare.application.add_url_rule("/ok", "ok", lambda: "ok")

    def _add_totp(self, user: str) -> str:
        box, now, method_id = self.reg.info.ctx.box, self.clock.now(), random_id()
        self.reg.store.add_method(
            MethodRecord(
                id=method_id, user_id=user, kind=MethodKind.TOTP, label="Authenticator app",
                created_at=now, data={"issuer": "Bench"}, counter=0, last_used_at=None,
                secret=box.encrypt(self.secret.encode(), context=secret_context(user, method_id)),
            ),
            limit=5,
            events=[],
        )  # fmt: skip
        return method_id

    def bare_get(self) -> None:
        assert self.bare.get("/ok").status_code == 200

    def issue(self) -> None:
        """The final /authorize of a signed-in (and cleared) user: a code for the client."""
        response = self.client.get(authorize_url(self.client_id))
        assert response.status_code == 302, response.status_code
        location = response.headers["Location"]
        assert "code" in parse_qs(urlsplit(location).query), location

    def verify_prepared(self) -> Callable[[], None]:
        """alice at the MFA step in a browser of her own: the POST that verifies her code."""
        self.clock.advance(30)  # a new time step: the last code is spent (replay protection)
        browser = self.app.test_client()
        url = authorize_url(self.client_id)
        mfa = login(browser, "alice", url)  # straight to the MFA page (decision 226)
        page = browser.get(mfa, headers={"Accept": "application/json"}).get_json()
        while "redirect" in page:  # the sign-in step sends on to the MFA page
            mfa = page["redirect"]
            page = browser.get(mfa, headers={"Accept": "application/json"}).get_json()
        form = {"action": "verify", "method_id": self.method_id, "csrf_token": page["csrf_token"],
                "code": pyotp.TOTP(self.secret).at(self.clock.now())}  # fmt: skip

        def post() -> None:
            response = browser.post(mfa, data=form)
            assert response.status_code == 303, response.get_data(True)[:300]

        return post


def verify_cpu(subject: Subject, count: int) -> float:
    """The verify POSTs alone: each user is prepared (password, MFA page) outside the clock."""
    total = 0.0
    for _ in range(count):
        post = subject.verify_prepared()
        total += cpu_of(post, 1)
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", choices=("verify", "issue"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subject = Subject(Path(tmp))
        for _ in range(20):  # warm up: imports, template compilation, first connections
            subject.issue()
            subject.bare_get()
        settle_loaded_objects()  # as the served app does (decision 223)
        if args.profile:
            profiler = cProfile.Profile()
            for _ in range(args.requests):
                run = subject.issue if args.profile == "issue" else subject.verify_prepared()
                profiler.enable()
                run()
                profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
            return
        rows: dict[str, list[float]] = {"bare Flask GET": [], "MFA verify POST": [],
                                        "code issuance": []}  # fmt: skip
        for _ in range(args.rounds):
            rows["bare Flask GET"].append(cpu_of(subject.bare_get, args.requests))
            rows["MFA verify POST"].append(verify_cpu(subject, max(args.requests // 4, 10)))
            rows["code issuance"].append(cpu_of(subject.issue, args.requests))
        print("CPU per request (time.process_time, median of rounds; in process, test client):")
        bare = statistics.median(rows["bare Flask GET"])
        for name, values in rows.items():
            cpu = statistics.median(values)
            print(f"  {name:<16} {cpu * 1000:7.3f} ms   ({cpu / bare:5.1f}x the bare GET)")


if __name__ == "__main__":
    main()
