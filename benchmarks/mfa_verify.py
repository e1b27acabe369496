"""The MFA verify request alone: a TOTP code posted through gunicorn (2 workers), against a bare
Flask "ok" view served the same way, measured in the same run.

    python benchmarks/mfa_verify.py [--seconds 3] [--rounds 5] [--stores sqlite,redis,postgres]
                                    [--workers sync,gthread]

The three stores by default; ``redis-unix`` also measures the same Redis through its Unix socket (a
Redis on the same host as the IdP). ``postgres`` measures the PostgreSQL store on a server the
benchmark starts (tests/store/postgres_servers.py: loopback TCP, fsync off, synchronous commits),
also against its own floor: the bare view after 2 ``SELECT 1`` round trips, what a verify makes
there (tests/web/test_web_postgres_round_trips.py).

Both gunicorn worker classes are measured, each against its own bare baseline: ``sync`` (one
request per process at a time, no keep-alive: what docs/deploy.md recommends behind a proxy) and
``gthread`` (4 threads per process, keep-alive).

Budget: the verify request reaches at least 40% of the bare view's throughput (printed as a
ratio; nothing is asserted on time), on the SQLite store. The Redis store is measured and
printed the same way, and also against the "Redis floor": the bare view after as many round
trips to the same Redis as a verify makes (2, tests/web/test_web_redis_round_trips.py), which
is what the network alone costs (docs/decisions.md, 38).

The servers run side by side; at each concurrency the benchmark measures rounds of "bare (and
the Redis floor), then each store's verify", and prints each round's ratio and their median.
On a shared virtual machine the throughput of the same server drifts by a third within a
minute: a ratio of two measurements taken far apart measured the drift as much as the request.

Each verify request is a real success (303): replay protection accepts a code once per method
and time step, and a successful verify rotates the session, so every request needs its own
user at the MFA step. Before each measurement the benchmark prepares enough of them in process,
through the package's own API on the same store (a TOTP method with an encrypted seed, a
session after the password with a continuation, one code each): as many as the bare view just
served in that time (a verify cannot be faster than "ok"), plus 10%. wrk sends each prepared
request once; any answer other than 303 counts as an error. Loopback only; starts its own
redis-server and gunicorn processes and stops them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "store"), str(ROOT / "tests" / "e2e")]

import pyotp  # noqa: E402
from gunicorn_servers import Gunicorn  # noqa: E402
from postgres_servers import PostgresServer  # noqa: E402
from redis_servers import RedisServer, require_redis  # noqa: E402

from benchmarks.support.bench_app import (  # noqa: E402
    POSTGRES_VERIFY_ROUND_TRIPS,
    VERIFY_ROUND_TRIPS,
    make_app,
    write_config,
)
from benchmarks.support.load import WrkResult, require_wrk, run_wrk  # noqa: E402
from oidc_combinedreg import CombinedRegistration  # noqa: E402
from oidc_combinedreg.crypto import random_id  # noqa: E402
from oidc_combinedreg.methods.kinds import MethodKind  # noqa: E402
from oidc_combinedreg.service.base import secret_context  # noqa: E402
from oidc_combinedreg.store.base import MethodRecord  # noqa: E402
from oidc_combinedreg.web.flow import Flow  # noqa: E402

SUPPORT = str(ROOT / "benchmarks" / "support")
#: the Redis server's Unix socket (a short path: at most 104 bytes)
UNIX_SOCKET = Path(tempfile.gettempdir()) / f"bench-redis-{os.getpid()}.sock"
#: gunicorn options of each worker class measured (both sides get the same)
WORKER_CLASSES = {
    "sync": ("--worker-class", "sync"),
    "gthread": ("--worker-class", "gthread", "--threads", "4", "--keep-alive", "30"),
}


def prepare(reg: CombinedRegistration, first: int, count: int, lines: Path) -> None:
    """``count`` users, each at the MFA step with a code for now; one request line each."""
    now = reg.clock.now()
    box, store, cookie = reg.info.ctx.box, reg.store, reg.sessions.cookie_name
    prefix = reg.config.web.prefix
    with lines.open("w") as out:
        for n in range(first, first + count):
            user = f"u{n}"
            secret = pyotp.random_base32(32)
            method_id = random_id()
            store.add_method(
                MethodRecord(
                    id=method_id, user_id=user, kind=MethodKind.TOTP, label="Authenticator app",
                    created_at=now, data={"issuer": "Bench"}, counter=0, last_used_at=None,
                    secret=box.encrypt(secret.encode(), context=secret_context(user, method_id)),
                ),
                limit=5,
                events=[],
            )  # fmt: skip
            session = reg.sessions.create(Flow.start(user, now))
            cid = reg.flow.add_continuation(session, "/authorize", "client_id=bench", now)
            reg.sessions.save(session)
            body = urlencode(
                {"action": "verify", "method_id": method_id, "csrf_token": session.csrf_token,
                 "code": pyotp.TOTP(secret).at(now)}
            )  # fmt: skip
            out.write(f"{prefix}/mfa?c={cid}\t{cookie}={session.sid}\t{body}\n")


def line(name: str, c: int, r: WrkResult) -> str:
    return (
        f"  {name:<18} c={c}: {r.rps:8.0f} req/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms"
        f"  errors {r.errors}  (wrk used {r.client_cpu:.0%} of a core)"
    )


class VerifyTarget:
    """One store's gunicorn serving the verify request, and the users prepared for it."""

    def __init__(
        self, tmp: Path, workers: str, store: str, redis_url: str, postgres_dsn: str = ""
    ) -> None:
        self.store = store
        self.folder = tmp / f"verify-{workers}-{store}"
        self.folder.mkdir()
        # "redis-unix": the same Redis through its Unix socket (a Redis on the same host).
        backend = "redis" if store.startswith("redis") else store
        url = f"unix://{UNIX_SOCKET}" if store == "redis-unix" else redis_url
        config = write_config(self.folder, store=backend, redis_url=url, postgres_dsn=postgres_dsn)
        self.reg = make_app(config)  # the same store and key as the workers, to prepare users
        self.server = Gunicorn("bench_app:app", directory=self.folder, workers=2,
                               extra=WORKER_CLASSES[workers], pythonpath=[SUPPORT],
                               env={"BENCH_CONFIG": str(config)})  # fmt: skip
        self.first = 0

    def measure(self, c: int, seconds: float, ceiling: float, tmp: Path) -> WrkResult:
        """Prepare one user per request it could serve (a verify cannot be faster than the bare
        view just measured), then send each prepared request once."""
        count = int(ceiling * seconds * 1.1) + 100
        lines = self.folder / f"c{c}-{self.first}.tsv"
        prepare(self.reg, self.first, count, lines)
        self.first += count
        return run_wrk(self.server.url, connections=c, seconds=seconds, workdir=self.folder,
                       lines=lines, expect_status=303)  # fmt: skip

    def close(self) -> None:
        self.reg.store.close()


def bench(tmp: Path, workers: str, stores: list[str], redis_url: str, seconds: float,
          rounds: int, levels: list[int], postgres_dsn: str = "") -> None:  # fmt: skip
    """Rounds of "bare, then each store's verify" at each concurrency: each verify figure is
    compared with the bare figure measured just before it, so the machine's drift between
    measurements (large on a shared virtual machine) stays out of the ratio; the median of the
    rounds' ratios is the result. With the Redis store, each round also measures the Redis
    floor (the bare view after the verify's round trips), and the Redis verify against it."""
    print(f"MFA verify through gunicorn (2 workers, {workers}), {rounds} rounds of {seconds:.0f} s")
    targets = [VerifyTarget(tmp, workers, store, redis_url, postgres_dsn) for store in stores]
    bare = Gunicorn("bench_app:bare", directory=tmp / f"bare-{workers}", workers=2,
                    extra=WORKER_CLASSES[workers], pythonpath=[SUPPORT])  # fmt: skip
    floor = (
        Gunicorn(
            "bench_app:redis_floor",
            directory=tmp / f"floor-{workers}",
            workers=2,
            extra=WORKER_CLASSES[workers],
            pythonpath=[SUPPORT],
            env={"BENCH_REDIS_URL": redis_url},
        )  # fmt: skip
        if "redis" in stores
        else None
    )
    pg_floor = (
        Gunicorn(
            "bench_app:postgres_floor",
            directory=tmp / f"pg-floor-{workers}",
            workers=2,
            extra=WORKER_CLASSES[workers],
            pythonpath=[SUPPORT],
            env={"BENCH_POSTGRES_DSN": postgres_dsn},
        )  # fmt: skip
        if "postgres" in stores
        else None
    )
    try:
        with bare, contextlib.ExitStack() as stack:
            for target in targets:
                stack.enter_context(target.server)
            if floor is not None:
                stack.enter_context(floor)
            if pg_floor is not None:
                stack.enter_context(pg_floor)
            for c in levels:
                # Warm up every server alike (a worker's first requests load and compile code).
                warm = run_wrk(bare.url + "/ok", connections=c, seconds=1, workdir=tmp)
                for warmed in (floor, pg_floor):
                    if warmed is not None:
                        run_wrk(warmed.url + "/ok", connections=c, seconds=1, workdir=tmp)
                for target in targets:
                    target.measure(c, 1, warm.rps, tmp)
                ratios: dict[str, list[float]] = {t.store: [] for t in targets}
                floor_ratios: list[float] = []
                pg_floor_ratios: list[float] = []
                for _ in range(rounds):
                    # The references scripted as the verify's lines are (support/load.py).
                    base = run_wrk(bare.url + "/ok", connections=c, seconds=seconds, workdir=tmp,
                                   expect_status=200, scripted=True)  # fmt: skip
                    print(line("bare Flask ok", c, base), flush=True)
                    least = None
                    if floor is not None:
                        least = run_wrk(floor.url + "/ok", connections=c, seconds=seconds,
                                        workdir=tmp, expect_status=200, scripted=True)  # fmt: skip
                        print(line(f"Redis floor ({VERIFY_ROUND_TRIPS} RT)", c, least), flush=True)
                    pg_least = None
                    if pg_floor is not None:
                        pg_least = run_wrk(pg_floor.url + "/ok", connections=c, seconds=seconds,
                                           workdir=tmp, expect_status=200,
                                           scripted=True)  # fmt: skip
                        name = f"PG floor ({POSTGRES_VERIFY_ROUND_TRIPS} RT)"
                        print(line(name, c, pg_least), flush=True)
                    for target in targets:
                        got = target.measure(c, seconds, base.rps, tmp)
                        ratios[target.store].append(got.rps / base.rps)
                        extra = ""
                        if target.store == "redis" and least is not None:
                            floor_ratios.append(got.rps / least.rps)
                            extra = f", {got.rps / least.rps:.2f} of the floor"
                        if target.store == "postgres" and pg_least is not None:
                            pg_floor_ratios.append(got.rps / pg_least.rps)
                            extra = f", {got.rps / pg_least.rps:.2f} of the floor"
                        print(line(f"verify, {target.store}", c, got)
                              + f"  ratio {got.rps / base.rps:.2f}{extra}", flush=True)  # fmt: skip
                for store, values in ratios.items():
                    each = " ".join(f"{v:.2f}" for v in values)
                    print(f"  ratio verify/bare, {workers}, {store}, c={c}: "
                          f"{statistics.median(values):.2f} (median of {each}; budget >= 0.40)")  # fmt: skip
                if floor_ratios:
                    each = " ".join(f"{v:.2f}" for v in floor_ratios)
                    print(f"  ratio verify/Redis floor, {workers}, redis, c={c}: "
                          f"{statistics.median(floor_ratios):.2f} (median of {each})")  # fmt: skip
                if pg_floor_ratios:
                    each = " ".join(f"{v:.2f}" for v in pg_floor_ratios)
                    print(f"  ratio verify/PG floor, {workers}, postgres, c={c}: "
                          f"{statistics.median(pg_floor_ratios):.2f} (median of {each})")  # fmt: skip
    finally:
        for target in targets:
            target.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--stores", default="sqlite,redis,postgres", help="also: redis-unix")
    parser.add_argument("--workers", default="sync,gthread", help="gunicorn worker classes")
    parser.add_argument("--rounds", type=int, default=5, help="bare/verify rounds per level")
    args = parser.parse_args()
    require_wrk()
    stores = args.stores.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-mfa-") as name:
        tmp = Path(name)
        redis = None
        if any(store.startswith("redis") for store in stores):
            require_redis()
            socket = ("--unixsocket", str(UNIX_SOCKET), "--unixsocketperm", "700")
            redis = RedisServer(tmp / "redis", extra=socket).start()
        postgres = PostgresServer().start() if "postgres" in stores else None
        dsn = postgres.create_database("bench") if postgres else ""
        try:
            for workers in args.workers.split(","):
                url = redis.url if redis else ""
                bench(tmp, workers, stores, url, args.seconds, args.rounds, [1, 8], dsn)
        finally:
            if redis:
                redis.stop()
            if postgres:
                postgres.destroy()


if __name__ == "__main__":
    main()
