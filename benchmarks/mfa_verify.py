"""The MFA verify request alone: a TOTP code posted through gunicorn (2 workers), against a bare
Flask "ok" view served the same way, measured in the same run.

    python benchmarks/mfa_verify.py [--seconds 3] [--stores sqlite,redis] [--workers sync,gthread]

Both gunicorn worker classes are measured, each against its own bare baseline: ``sync`` (one
request per process at a time, no keep-alive: what docs/deploy.md recommends behind a proxy) and
``gthread`` (4 threads per process, keep-alive).

Budget: the verify request reaches at least 40% of the bare view's throughput (printed as a
ratio; nothing is asserted on time). Each verify request is a real success (303): replay
protection accepts a code once per method and time step, and a successful verify rotates the
session, so every request needs its own user at the MFA step. Before each run the benchmark
prepares enough of them in process, through the package's own API on the same store (a TOTP
method with an encrypted seed, a session after the password with a continuation, one code
each), sized from the bare view's throughput at the same concurrency (a verify cannot be faster
than "ok") and from the verify's own figure at concurrency 1. wrk sends each prepared request
once; any answer other than 303 counts as an error. Loopback only; starts its own redis-server
and gunicorn processes and stops them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "store"), str(ROOT / "tests" / "e2e")]

import pyotp  # noqa: E402
from gunicorn_servers import Gunicorn  # noqa: E402
from redis_servers import RedisServer, require_redis  # noqa: E402

from benchmarks.support.bench_app import make_app, write_config  # noqa: E402
from benchmarks.support.load import WrkResult, require_wrk, run_wrk  # noqa: E402
from oidc_combinedreg import CombinedRegistration  # noqa: E402
from oidc_combinedreg.crypto import random_id  # noqa: E402
from oidc_combinedreg.methods.kinds import MethodKind  # noqa: E402
from oidc_combinedreg.service.base import secret_context  # noqa: E402
from oidc_combinedreg.store.base import MethodRecord  # noqa: E402
from oidc_combinedreg.web.flow import Flow  # noqa: E402

SUPPORT = str(ROOT / "benchmarks" / "support")
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


def bench_bare(tmp: Path, workers: str, seconds: float, levels: list[int]) -> dict[int, WrkResult]:
    results = {}
    with Gunicorn("bench_app:bare", directory=tmp / f"bare-{workers}", workers=2,
                  extra=WORKER_CLASSES[workers],
                  pythonpath=[SUPPORT]) as server:  # fmt: skip
        for c in levels:
            run_wrk(server.url + "/ok", connections=c, seconds=1, workdir=tmp)  # warm up
            results[c] = run_wrk(server.url + "/ok", connections=c, seconds=seconds, workdir=tmp)
            print(line("bare Flask ok", c, results[c]), flush=True)
    return results


def bench_verify(
    tmp: Path,
    workers: str,
    store: str,
    redis_url: str,
    seconds: float,
    bare: dict[int, WrkResult],
) -> dict[int, WrkResult]:
    folder = tmp / f"verify-{workers}-{store}"
    folder.mkdir()
    config = write_config(folder, store=store, redis_url=redis_url)
    reg = make_app(config)  # the same store and key as the workers, to prepare users
    results, first = {}, 0
    try:
        with Gunicorn("bench_app:app", directory=folder, workers=2, extra=WORKER_CLASSES[workers],
                      pythonpath=[SUPPORT], env={"BENCH_CONFIG": str(config)}) as server:  # fmt: skip
            for c in bare:
                # At most what "ok" served; once the 1-connection figure is known, at most
                # three times it (two workers on two cores), so preparing stays short.
                ceiling = [3 * r.rps for r in results.values()] or [bare[c].rps]
                count = int(min(bare[c].rps, *ceiling) * seconds * 1.1) + 100
                lines = folder / f"c{c}.tsv"
                started = time.monotonic()
                prepare(reg, first, count, lines)
                first += count
                print(f"  ({store}: {count} users prepared in {time.monotonic() - started:.1f} s)")
                results[c] = run_wrk(server.url, connections=c, seconds=seconds, workdir=folder,
                                     lines=lines, expect_status=303)  # fmt: skip
                print(line(f"verify, {store}", c, results[c]), flush=True)
    finally:
        reg.store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--workers", default="sync,gthread", help="gunicorn worker classes")
    args = parser.parse_args()
    require_wrk()
    levels = [1, 8]
    stores = args.stores.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-mfa-") as name:
        tmp = Path(name)
        redis = None
        if "redis" in stores:
            require_redis()
            redis = RedisServer(tmp / "redis").start()
        try:
            for workers in args.workers.split(","):
                print(
                    f"MFA verify through gunicorn (2 workers, {workers}), {args.seconds:.0f} s each"
                )
                bare = bench_bare(tmp, workers, args.seconds, levels)
                for store in stores:
                    url = redis.url if redis else ""
                    verify = bench_verify(tmp, workers, store, url, args.seconds, bare)
                    for c in levels:
                        ratio = verify[c].rps / bare[c].rps
                        print(f"  ratio verify/bare, {workers}, {store}, c={c}: {ratio:.2f}"
                              " (budget >= 0.40)")  # fmt: skip
        finally:
            if redis:
                redis.stop()


if __name__ == "__main__":
    main()
