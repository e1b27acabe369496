"""The TOTP verify POST in process, on SQLite: CPU microseconds, Python function calls and SQL
statements per verify, through the bench host (benchmarks/support/bench_app.py, the app that
benchmarks/mfa_verify.py serves) and through the example IdP as a user runs it (its Flask app,
its TOML directory, its own SQLite database beside the middleware's store).

    python benchmarks/verify_profile.py [--verifies 1200] [--rounds 3] [--hosts bench,example]
                                        [--top 25] [--dump /tmp/head-]

What load on a shared machine does not move, for before/after comparisons (the throughput
benchmarks need a quiet machine): ``time.process_time`` over many verifies (CPU of this process
only; the median and the least of ``--rounds`` rounds, and the first decile of batches of 50
verifies: processes sharing the cores and their caches only ever add to a batch's CPU, and on
a loaded machine they land on some batches and not others), the calls cProfile counts (one more pass), and the
statements SQLite runs (``sqlite3.Connection.set_trace_callback``, one more pass, by database
file: the middleware's store, the example IdP's own). A bare Flask "ok" GET through the same
calls is printed first, for scale: ``bare / verify`` of CPU is the ratio a CPU-bound server
would show between them, before what the HTTP server adds to both.

Each CPU figure twice: with one worker, and with "another worker" writing to the store's file
before each verify (outside the measured time), as the other of gunicorn's two workers does: in
WAL mode any commit by another connection makes SQLite drop the reading connection's whole page
cache, so the verify reads every page it needs again (what the throughput benchmarks pay).

Each verify is a real success (303, to the sign-in step): as benchmarks/mfa_verify.py prepares
them, one user per request at the MFA step (a TOTP method with an encrypted seed, a session
after the password with a continuation, one code), through the package's own API on the same
store, outside the measured time; the WSGI environ (REMOTE_ADDR set, as a server sets it) is
built beforehand too, so the figures are the application's work alone. ``--top`` prints
cProfile's entries with the most own time. Runs unchanged in a worktree of an older commit
(copy it there) to measure a baseline: only the package's public pieces it names are used.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import pyotp  # noqa: E402
from flask import Flask  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

import oidc_combinedreg  # noqa: E402
from oidc_combinedreg.crypto import random_id  # noqa: E402
from oidc_combinedreg.methods.kinds import MethodKind  # noqa: E402
from oidc_combinedreg.service.base import secret_context  # noqa: E402
from oidc_combinedreg.store.base import MethodRecord  # noqa: E402
from oidc_combinedreg.web.flow import Flow  # noqa: E402

App = Callable[[dict[str, Any], Any], Iterable[bytes]]

# -- SQL statements, by database file -------------------------------------------------------------

_connect = sqlite3.connect
#: statements run while counting is on: (database file name, first word)
STATEMENTS: Counter[tuple[str, str]] = Counter()
#: every connection opened since this module was loaded, with its trace callback
CONNECTIONS: list[tuple[sqlite3.Connection, Callable[[str], None]]] = []
COUNTING = [False]


def _traced_connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
    conn = _connect(database, *args, **kwargs)
    name = Path(str(database).removeprefix("file:").split("?")[0]).name

    def trace(statement: str) -> None:
        STATEMENTS[(name, statement.split(None, 1)[0].upper())] += 1

    CONNECTIONS.append((conn, trace))
    if COUNTING[0]:
        conn.set_trace_callback(trace)
    return conn


def counting(on: bool) -> None:
    """Trace the statements of every open connection, or none: a trace callback costs CPU at
    every statement even when it does nothing (SQLite expands the bound parameters into the
    text it passes), so the timed passes run without one."""
    COUNTING[0] = on
    for conn, trace in CONNECTIONS:
        try:
            conn.set_trace_callback(trace if on else None)
        except sqlite3.ProgrammingError:
            pass  # closed (the pool closed it): it runs nothing more


# Every connection opened from here on (both stores' pools, the example IdP's database) is known,
# so that the counting pass can trace them all.
sqlite3.connect = _traced_connect  # type: ignore[assignment]


# -- the requests ---------------------------------------------------------------------------------


def environ_of(
    path: str, *, method: str = "GET", cookie: str = "", body: str = ""
) -> dict[str, Any]:
    query = ""
    if "?" in path:
        path, query = path.split("?", 1)
    builder = EnvironBuilder(
        path=path,
        query_string=query,
        method=method,
        data=body or None,
        content_type="application/x-www-form-urlencoded" if body else None,
        headers={"Cookie": cookie, "Accept": "text/html"} if cookie else {"Accept": "text/html"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    try:
        return dict(builder.get_environ())
    finally:
        builder.close()


def call(app: App, environ: dict[str, Any]) -> str:
    status: list[str] = []

    def start_response(value: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status.append(value)
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        for _ in chunks:
            pass
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return status[0]


#: the other worker's write: one counter row of its own
_OTHER_WRITE = (
    "INSERT INTO counters (key, value, expires_at) VALUES ('bench:other-worker', 1, NULL)"
    " ON CONFLICT (key) DO UPDATE SET value = value + 1"
)


class Subject:
    """One app serving verify POSTs, and the users prepared for them."""

    def __init__(self, name: str, app: App, reg: Any, database: Path) -> None:
        self.name, self.app, self.reg = name, app, reg
        self.next_user = 0
        #: "the other worker": a connection of its own to the store's file that writes before
        #: each verify when ``other_worker`` is set (see :meth:`run`)
        self.other = _connect(database, isolation_level=None)
        # As the store's connections: checkpoints only in the store's own thread (a default
        # connection would checkpoint at its commits once the WAL passes 1000 pages).
        self.other.execute("PRAGMA wal_autocheckpoint = 0")
        self.other.execute("PRAGMA synchronous = NORMAL")  # no fsync per commit either
        self.other_worker = False

    def prepare(self, count: int) -> list[dict[str, Any]]:
        """``count`` users at the MFA step, each with a code for now: one environ each."""
        reg = self.reg
        now = reg.clock.now()
        box, store, cookie = reg.info.ctx.box, reg.store, reg.sessions.cookie_name
        prefix = reg.config.web.prefix
        environs = []
        for n in range(self.next_user, self.next_user + count):
            user, secret, method_id = f"u{n}", pyotp.random_base32(32), random_id()
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
            body = urlencode({"action": "verify", "method_id": method_id,
                              "csrf_token": session.csrf_token,
                              "code": pyotp.TOTP(secret).at(now)})  # fmt: skip
            environs.append(environ_of(f"{prefix}/mfa?c={cid}", method="POST", body=body,
                                       cookie=f"{cookie}={session.sid}"))  # fmt: skip
        self.next_user += count
        return environs

    def run(self, environs: list[dict[str, Any]]) -> float:
        """Send each verify; the CPU seconds the app spent on them.

        With ``other_worker``, another connection writes to the store's file before each one
        (outside the measured time), as the other gunicorn worker's requests do: SQLite then
        drops the whole page cache of the connection that reads next (WAL mode: any commit by
        another connection), and the verify reads each page it needs again."""
        spent = 0.0
        for environ in environs:
            if self.other_worker:
                self.other.execute(_OTHER_WRITE)
            start = time.process_time()
            status = call(self.app, environ)
            spent += time.process_time() - start
            assert status.startswith("303"), f"{self.name}: verify answered {status}"
        return spent


def bench_host(folder: Path) -> Subject:
    from benchmarks.support.bench_app import make_app, write_config

    folder.mkdir()
    reg = make_app(write_config(folder, store="sqlite"))
    return Subject("bench host", reg, reg, folder / "reg.sqlite3")


def example_idp(folder: Path, users: int) -> Subject:
    """The example IdP as example_idp.wsgi builds it (its combinedreg.toml: SQLite store under
    the instance folder), with a directory of ``users`` staff users ``u<n>``."""
    from argon2 import PasswordHasher

    from example_idp import create_app

    folder.mkdir()
    # A cheap hash: no verify checks a password; the directory file only needs one per user.
    digest = PasswordHasher(memory_cost=8, time_cost=1, parallelism=1).hash("unused")
    directory = folder / "directory.toml"
    with directory.open("w") as out:
        for n in range(users):
            out.write(f'[[users]]\nid = "u{n}"\npassword_hash = "{digest}"\n'
                      f'email = "u{n}@example.test"\ngroups = ["staff"]\n')  # fmt: skip
    config = shutil.copy(ROOT / "example_idp" / "combinedreg.toml", folder / "combinedreg.toml")
    app: Flask = create_app(
        instance_path=folder / "instance", combinedreg_config=config, directory_path=directory
    )
    registration = app.extensions["example_idp"].registration
    return Subject("example IdP", app, registration, folder / "instance" / "combinedreg.sqlite3")


# -- measures -------------------------------------------------------------------------------------


#: verifies whose CPU is summed together: load from other processes lands on some batches and
#: not others
BATCH = 50


def bare_cpu(count: int) -> float:
    """CPU seconds per request of a bare Flask "ok" GET, timed one request at a time as the
    verifies are (the timer's own cost, under a microsecond, is in both)."""
    bare = Flask("bare")
    bare.add_url_rule("/ok", "ok", lambda: "ok")
    environs = [environ_of("/ok") for _ in range(count)]
    for environ in environs[:50]:  # warm up
        call(bare, dict(environ))
    spent = 0.0
    for environ in environs:
        start = time.process_time()
        call(bare, environ)
        spent += time.process_time() - start
    return spent / count


def measure(
    subject: Subject, verifies: int, rounds: int, top: int, dump: str = ""
) -> dict[str, float]:
    subject.run(subject.prepare(50))  # warm up: imports, templates, first connections
    print(f"{subject.name}: {verifies} verifies x {rounds} rounds")
    figures = {}
    for other_worker in (False, True):
        subject.other_worker = other_worker
        cpu, batches = [], []
        for _ in range(rounds):
            environs = subject.prepare(verifies)
            for first in range(0, verifies, BATCH):
                batch = environs[first : first + BATCH]
                batches.append(subject.run(batch) / len(batch))
            cpu.append(statistics.fmean(batches[-len(range(0, verifies, BATCH)) :]))
        each = " ".join(f"{c * 1e6:.0f}" for c in cpu)
        floor = statistics.quantiles(batches, n=10)[0] if len(batches) > 1 else batches[0]
        mode = "another worker wrote before each" if other_worker else "one worker"
        print(f"  CPU per verify, {mode}:")
        print(f"    {statistics.median(cpu) * 1e6:8.1f} us  median of rounds ({each}), "
              f"{floor * 1e6:.1f} us steadiest tenth of {BATCH}-verify batches (compare this "
              "one on a loaded machine)")  # fmt: skip
        figures["two workers" if other_worker else "cpu"] = statistics.median(cpu)
    subject.other_worker = False
    environs = subject.prepare(verifies)
    profiler = cProfile.Profile()
    profiler.enable()
    subject.run(environs)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    if dump:  # for pstats: compare two commits' calls function by function
        stats.dump_stats(f"{dump}{subject.name.replace(' ', '-')}.pstats")
    environs = subject.prepare(verifies)
    STATEMENTS.clear()
    counting(True)
    try:
        subject.run(environs)
    finally:
        counting(False)
    by_db: Counter[str] = Counter()
    for (db, _), n in STATEMENTS.items():
        by_db[db] += n
    print(f"  calls per verify    {stats.total_calls / verifies:8.1f}  (cProfile, one pass)")  # type: ignore[attr-defined]
    print(f"  SQL per verify      {sum(by_db.values()) / verifies:8.2f}")
    for db, n in sorted(by_db.items()):
        kinds = ", ".join(
            f"{kind} {count / verifies:.2f}"
            for (name, kind), count in sorted(STATEMENTS.items())
            if name == db
        )
        print(f"    {db:<24} {n / verifies:6.2f}  ({kinds})")
    if top:
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats("tottime").print_stats(top)
        print(out.getvalue())
    figures["calls"] = stats.total_calls / verifies  # type: ignore[attr-defined]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verifies", type=int, default=1200, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hosts", default="bench,example")
    parser.add_argument("--top", type=int, default=0, help="cProfile entries to print")
    parser.add_argument("--dump", default="", help="write <DUMP><host>.pstats (cProfile's pass)")
    args = parser.parse_args()
    print(f"oidc_combinedreg from {Path(oidc_combinedreg.__file__).parent}")
    bare = statistics.median(bare_cpu(args.verifies) for _ in range(args.rounds))
    print(f"bare Flask GET: CPU per request {bare * 1e6:8.1f} us")
    users = 50 + args.verifies * (2 * args.rounds + 2)
    with tempfile.TemporaryDirectory(prefix="verify-profile-") as name:
        tmp = Path(name)
        for host in args.hosts.split(","):
            subject = bench_host(tmp / host) if host == "bench" else example_idp(tmp / host, users)
            try:
                got = measure(subject, args.verifies, args.rounds, args.top, args.dump)
            finally:
                subject.reg.store.close()
            print(f"  bare GET / verify, CPU: {bare / got['cpu']:.2f} (one worker), "
                  f"{bare / got['two workers']:.2f} (another worker wrote before each)")  # fmt: skip


if __name__ == "__main__":
    main()
