"""Soak: complete sign-ins with MFA through gunicorn at concurrency 16, then count the records.

    python benchmarks/soak.py [--seconds 60] [--concurrency 16] [--stores sqlite,redis,postgres]

Each of the 16 clients (separate processes, keep-alive) loops until the deadline: a user who
has an authenticator app and has not used the current time step signs in with password + TOTP
code and comes back to /authorize for the code; otherwise a new user signs in and registers an
app in the wizard (password, intro, QR step, code, summary, finish, /authorize). Printed per
store: sign-ins/s, p50/p99 of a request and of a whole sign-in, errors. Then the store is
checked: every registered user has exactly one method, and the audit log holds exactly one
"method.added" per registration and one "mfa.succeeded" per MFA sign-in (nothing lost, nothing
twice). Loopback only: starts its own redis-server, PostgreSQL (``postgres``; synchronous commits)
and gunicorn (4 workers x 4 threads).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "store"), str(ROOT / "tests" / "e2e")]

import pyotp  # noqa: E402
import requests  # noqa: E402
from gunicorn_servers import Gunicorn  # noqa: E402
from postgres_servers import PostgresServer  # noqa: E402
from redis_servers import RedisServer, require_redis  # noqa: E402

from benchmarks.support.bench_app import password_of, write_config  # noqa: E402
from oidc_combinedreg import load_config  # noqa: E402
from oidc_combinedreg.clock import SystemClock  # noqa: E402
from oidc_combinedreg.store.factory import open_store  # noqa: E402

SUPPORT = str(ROOT / "benchmarks" / "support")
PREFIX = "/security-info"
JSON = {"Accept": "application/json"}
#: a wizard "next" answers with the next page itself, or redirects to it
NEXT = (200, 303)


@dataclass
class Tally:
    registered: list[str] = field(default_factory=list)
    mfa_sign_ins: int = 0
    request_ms: list[float] = field(default_factory=list)
    sign_in_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Client:
    def __init__(self, base: str, tally: Tally) -> None:
        self.base, self.tally = base, tally
        self.http = requests.Session()

    def call(
        self, method: str, url: str, expect: int | tuple[int, ...], **kw: Any
    ) -> requests.Response:
        started = time.perf_counter()
        r = self.http.request(method, self.base + url, allow_redirects=False, timeout=30, **kw)
        self.tally.request_ms.append((time.perf_counter() - started) * 1000)
        if r.status_code not in (expect if isinstance(expect, tuple) else (expect,)):
            raise RuntimeError(f"{method} {url.split('?')[0]}: {r.status_code} {r.text[:120]}")
        return r

    def follow(self, response: requests.Response) -> requests.Response:
        """GET redirects inside the IdP until the host's code (the RP's callback)."""
        while response.headers.get("Location", "").startswith("/"):
            response = self.call("GET", response.headers["Location"], (200, 302, 303))
            if response.status_code not in (302, 303):
                return response
        return response

    def login(self, user: str) -> str:
        self.http.cookies.clear()
        r = self.call(
            "POST", "/login", 303, data={"username": user, "password": password_of(user),
                                         "next": "/authorize?client_id=soak&state=s"},
        )  # fmt: skip
        where = str(r.headers["Location"])  # straight to /mfa or /wizard (decision 226)
        if where.startswith("/authorize"):  # a step the guard answers itself
            where = str(self.call("GET", where, 303).headers["Location"])
        return where

    def finish(self, response: requests.Response) -> None:
        last = self.follow(response)
        if "code=" not in last.headers.get("Location", ""):
            raise RuntimeError(f"no code at the end: {last.status_code}")

    def register(self, user: str) -> str:
        wizard = self.login(user)
        token = self.call("GET", wizard, 200, headers=JSON).json()["csrf_token"]
        self.call("POST", wizard, NEXT, json={"action": "next", "csrf_token": token}, headers=JSON)
        secret = self.call("GET", wizard, 200, headers=JSON).json()["secret"]
        self.call("POST", wizard, NEXT, json={"action": "next", "csrf_token": token}, headers=JSON)
        code = pyotp.TOTP(secret).now()
        body = {"action": "verify", "code": code, "csrf_token": token}
        self.call("POST", wizard, 303, json=body, headers=JSON)
        self.call("POST", wizard, NEXT, json={"action": "next", "csrf_token": token}, headers=JSON)
        done = self.call(
            "POST", wizard, 303, json={"action": "finish", "csrf_token": token}, headers=JSON
        )
        self.finish(done)
        return str(secret)

    def mfa(self, user: str, secret: str) -> None:
        mfa = self.login(user)
        if "/mfa" not in mfa:
            raise RuntimeError(f"expected the MFA step, got {mfa}")
        page = self.call("GET", mfa, 200, headers=JSON).json()
        body = {"action": "verify", "method_id": page["method"]["id"],
                "code": pyotp.TOTP(secret).now(), "csrf_token": page["csrf_token"]}  # fmt: skip
        self.finish(self.call("POST", mfa, 303, json=body, headers=JSON))


def client_loop(base: str, index: int, deadline: float) -> Tally:
    """One client: re-sign-in users whose last code step is past, else register a new one."""
    tally = Tally()
    client = Client(base, tally)
    users: deque[tuple[str, str, int]] = deque()  # (user, secret, time step last used)
    serial = 0
    while time.time() < deadline:
        step = int(time.time() // 30)
        started = time.perf_counter()
        try:
            if users and users[0][2] < step:
                user, secret, _ = users.popleft()
                client.mfa(user, secret)
                tally.mfa_sign_ins += 1
            else:
                user = f"u{index * 10_000_000 + serial}"
                serial += 1
                secret = client.register(user)
                tally.registered.append(user)
            users.append((user, secret, int(time.time() // 30)))
            tally.sign_in_ms.append((time.perf_counter() - started) * 1000)
        except Exception as exc:  # noqa: BLE001 - counted and shown, the soak goes on
            tally.errors.append(f"{type(exc).__name__}: {exc}")
    return tally


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")


def check_records(config: Path, tallies: list[Tally]) -> list[str]:
    store = open_store(load_config(config).storage, clock=SystemClock())
    problems = []
    try:
        registered = [u for t in tallies for u in t.registered]
        for user in registered:
            if len(store.list_methods(user)) != 1:
                problems.append(f"{user}: {len(store.list_methods(user))} methods")
        big = 10 * (len(registered) + sum(t.mfa_sign_ins for t in tallies)) + 100
        added = len(store.list_audit(event_prefix="method.added", limit=big))
        mfa = len(store.list_audit(event_prefix="mfa.succeeded", limit=big))
        if added != len(registered):
            problems.append(f"method.added events {added} != registrations {len(registered)}")
        if mfa != sum(t.mfa_sign_ins for t in tallies):
            problems.append(f"mfa.succeeded events {mfa} != MFA sign-ins")
    finally:
        store.close()
    return problems


def soak(
    tmp: Path, store: str, redis_url: str, seconds: float, concurrency: int, postgres_dsn: str = ""
) -> bool:
    folder = tmp / f"soak-{store}"
    folder.mkdir()
    config = write_config(folder, store=store, redis_url=redis_url, postgres_dsn=postgres_dsn)
    extra = ("--worker-class", "gthread", "--threads", "4", "--keep-alive", "30")
    with Gunicorn("bench_app:app", directory=folder, workers=4, extra=extra,
                  pythonpath=[SUPPORT], env={"BENCH_CONFIG": str(config)}) as server:  # fmt: skip
        deadline = time.time() + seconds
        started = time.monotonic()
        with ProcessPoolExecutor(concurrency) as pool:
            futures = [
                pool.submit(client_loop, server.url, i, deadline) for i in range(concurrency)
            ]
            tallies = [f.result() for f in futures]
        elapsed = time.monotonic() - started
    sign_ins = sum(len(t.sign_in_ms) for t in tallies)
    req = [x for t in tallies for x in t.request_ms]
    whole = [x for t in tallies for x in t.sign_in_ms]
    errors = [e for t in tallies for e in t.errors]
    registrations = sum(len(t.registered) for t in tallies)
    print(
        f"  {store:<6} {sign_ins} sign-ins in {elapsed:.0f} s = {sign_ins / elapsed:.1f}/s "
        f"({registrations} with the wizard, {sign_ins - registrations} with a code); "
        f"{len(req) / elapsed:.0f} requests/s"
    )
    print(
        f"         request p50 {pct(req, 50):.1f} ms p99 {pct(req, 99):.1f} ms; "
        f"sign-in p50 {pct(whole, 50):.0f} ms p99 {pct(whole, 99):.0f} ms; errors {len(errors)}"
    )
    for error in errors[:5]:
        print(f"         error: {error}")
    problems = check_records(config, tallies)
    print(f"         records: {'exact (no loss, no duplicate)' if not problems else problems[:5]}")
    return not errors and not problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per store")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--stores", default="sqlite,redis")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="soak-") as name:
        tmp = Path(name)
        print(f"Soak: {args.concurrency} clients, {args.seconds:.0f} s per store, gunicorn 4x4")
        redis = None
        if "redis" in args.stores:
            require_redis()
            redis = RedisServer(tmp / "redis").start()
        postgres = PostgresServer().start() if "postgres" in args.stores else None
        dsn = postgres.create_database("soak") if postgres else ""
        try:
            for store in args.stores.split(","):
                url = redis.url if redis else ""
                ok &= soak(tmp, store, url, args.seconds, args.concurrency, dsn)
        finally:
            if redis:
                redis.stop()
            if postgres:
                postgres.destroy()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
