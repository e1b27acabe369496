"""The example IdP as a user runs it (gunicorn, 2 sync workers), beside a bare Flask app served
the same way, in one run: the MFA verify POST, code issuance, and the whole sign-in of a browser
with and without the password hash's cost, on each store.

    python benchmarks/example_idp_flow.py [--stores sqlite,redis,postgres] [--seconds 3] [--rounds 5]
                                          [--levels 1,8] [--measures verify,issue,signin,signin-hash,passthrough]
                                          [--baseline TREE] [--access-log]

Measures (each as a ratio against the bare app measured just before it, in the same round):

* ``verify``: the TOTP verify POST through the example IdP (a real success, 303), sent by wrk
  (one prepared user at the MFA step per request, as benchmarks/mfa_verify.py prepares them,
  in the example's own directory), against a bare Flask "ok" GET.
* ``issue``: the final /authorize of a signed-in password-only user (the break-glass group),
  answered with a code (302), each request its own nonce, sent by wrk, against the bare GET.
* ``signin``, ``signin-hash``: whole sign-ins of a browser with an authenticator app (the
  authorization request showing the sign-in form, the password, the MFA page, the code, the
  code issued: each IdP's requests counted and printed), by a small Python client (cookies, one connection
  per request as gunicorn's sync workers close them), against the issue's "bare 8-request flow"
  (issue 22: eight GETs of the bare view per flow through the same client). A sign-in that needs
  fewer requests is faster for its user, and the ratio shows it; "per request" beside it divides
  that out (requests per second against the bare flow's), the figure of a flow of the same shape.
  ``signin`` has the password hash made near-free (argon2id 8 KiB, t=1, p=1: what is left is
  the IdP's own work); ``signin-hash`` the example's parameters (idp.toml: OWASP's minimum).
* ``passthrough``: a request the middleware does not own (the discovery document's GET, sent by
  wrk) through the first store's IdP, against the same IdP with the middleware taken out of its
  WSGI stack (support/example_idp_app.py), each served by gunicorn servers of their own, in the
  same round: the middleware's cost on the host's requests as users run them (budget: 1.03x, so
  a ratio of at least 0.97). Through servers the rounds spread by a few percent either way;
  benchmarks/passthrough.py measures the same in process, to the nanosecond.

Every server runs as gunicorn runs by default and as docs/deploy.md's command runs it: without
an access log (until the thirteenth session every server here logged each request to a file, as
the tests' servers do: gunicorn's access log copies every environ key and header of a request into
a dict first, 7-12% of the IdP's request handling under py-spy). ``--access-log`` logs on both
servers again.

Beside each wall-clock ratio, the **CPU time per request of the server's workers** (utime +
stime from /proc, both workers, the arbiter excluded): on a shared machine the throughput of the
same server drifts by a third between measurements, CPU time much less (it still grows when the
cores are oversubscribed: caches). Rounds interleave the servers, each measurement right after
its own of the bare app (the machine's speed drifts within seconds here); the figure is the
median of the rounds. ``--baseline TREE`` serves each store's IdP a second time
from another source tree (``git worktree add /tmp/base <commit>``), in the same rounds, each round
in the other order: a change's before and after on the same machine at the same moment.
On ``postgres`` (a default store, as ``make bench`` runs it): a PostgreSQL server of its own
(tests/store/postgres_servers.py), one database per IdP. Loopback only;
starts and stops its own redis-server, PostgreSQL and gunicorn processes. Nothing is asserted:
the figures are printed (docs/deploy.md keeps them).
"""

from __future__ import annotations

import argparse
import contextlib
import html
import http.client
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "store"), str(ROOT / "tests" / "e2e")]

import pyotp  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402
from gunicorn_servers import Gunicorn  # noqa: E402
from redis_servers import RedisServer, require_redis  # noqa: E402

from benchmarks.support.load import WrkResult, line_was_sent, require_wrk, run_wrk  # noqa: E402
from example_idp import create_app  # noqa: E402
from example_idp.settings import DEFAULT_SETTINGS_PATH, PasswordHashSettings  # noqa: E402
from oidc_combinedreg.crypto import random_id  # noqa: E402
from oidc_combinedreg.methods.kinds import MethodKind  # noqa: E402
from oidc_combinedreg.service.base import secret_context  # noqa: E402
from oidc_combinedreg.store.base import MethodRecord  # noqa: E402
from oidc_combinedreg.web.flow import Flow  # noqa: E402

SUPPORT = str(ROOT / "benchmarks" / "support")
SYNC = ("--worker-class", "sync")
REDIRECT_URI = "https://rp.example/cb"
PASSWORD = "bench-password"
#: users in the benchmark's directory (each verify and each sign-in uses one up)
USERS = 30_000
NEAR_FREE = PasswordHashSettings(memory_kib=8, time_cost=1, parallelism=1)
EXAMPLE = PasswordHashSettings()  # idp.toml's: OWASP's argon2id minimum


def _storage_redis(url: str, prefix: str) -> str:
    # The benchmark's own disposable Redis (no persistence: nothing to keep after the run); one
    # key prefix per IdP, as each has its own encryption key and the same user names.
    return (f'backend = "redis"\n[storage.redis]\nurl = "{url}"\nkey_prefix = "{prefix}"\n'
            "allow_no_persistence = true\n")  # fmt: skip


def _storage_sqlite(folder: Path) -> str:
    return f'backend = "sqlite"\n[storage.sqlite]\npath = "{folder / "combinedreg.sqlite3"}"\n'


def _storage_postgres(dsn: str) -> str:
    return f'backend = "postgres"\n[storage.postgres]\ndsn = "{dsn}"\n'


#: the benchmark's own PostgreSQL server (started by main() for ``--stores postgres``)
POSTGRES: list[Any] = []


def _postgres_database(folder: Path) -> str:
    # One database per IdP, as each has its own encryption key and the same user names.
    return str(POSTGRES[0].create_database(folder.name.replace("-", "_")))


#: store name -> its [storage] table body, given (IdP folder, Redis URL)
STORES: dict[str, Callable[[Path, str], str]] = {
    "sqlite": lambda folder, _: _storage_sqlite(folder),
    "redis": lambda folder, url: _storage_redis(url, f"bench-{folder.name}"),
    "postgres": lambda folder, _: _storage_postgres(_postgres_database(folder)),
}


def write_directory(path: Path, hasher: PasswordHasher) -> None:
    """``USERS`` users ``u<n>`` of the demo's "employees" group (MFA registration enforced, no
    password reset: the app's code is all they need; the "staff" group's reset asks for a
    second method since the demo config of issues 19/20) and one break-glass user ``glass``
    (password only), all with ``PASSWORD``, hashed once with ``hasher``'s parameters (so no
    sign-in remakes its hash)."""
    digest = hasher.hash(PASSWORD)
    with path.open("w") as out:
        out.write(
            f'[[users]]\nid = "glass"\npassword_hash = "{digest}"\ngroups = ["break-glass"]\n'
        )
        for n in range(USERS):
            out.write(f'[[users]]\nid = "u{n}"\npassword_hash = "{digest}"\n'
                      f'email = "u{n}@example.test"\ngroups = ["employees"]\n')  # fmt: skip


def write_config(folder: Path, storage: str) -> Path:
    """The example's combinedreg.toml with this store and absolute paths."""
    text = (ROOT / "example_idp" / "combinedreg.toml").read_text()
    head, rest = text.split("[storage]\n", 1)
    rest = rest.split("[secrets]\n", 1)[1]
    path = folder / "combinedreg.toml"
    path.write_text(
        head + "[storage]\n" + storage + "\n[secrets]\n"
        + rest.replace('"instance/', f'"{folder / "instance"}/')
    )  # fmt: skip
    return path


def write_settings(folder: Path, params: PasswordHashSettings) -> Path:
    path = folder / "idp.toml"
    path.write_text(
        DEFAULT_SETTINGS_PATH.read_text().split("[password_hash]")[0]
        + f"[password_hash]\nmemory_kib = {params.memory_kib}\ntime_cost = {params.time_cost}\n"
        f"parallelism = {params.parallelism}\n"
    )
    return path


def worker_cpu(master: int) -> float:
    """CPU seconds (user + system) the arbiter's worker processes have used so far."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for child in Path(f"/proc/{master}/task/{master}/children").read_text().split():
        with contextlib.suppress(FileNotFoundError):
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


# -- a browser, small: cookies, redirects by hand, one connection per request -------------------


class Browser:
    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.requests = 0

    def send(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        """(status, Location, body) of one request."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Host": f"127.0.0.1:{self.port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, val = pair.partition("=")
                if "max-age=0" in value.lower() or "expires=thu, 01 jan 1970" in value.lower():
                    self.cookies.pop(key.strip(), None)
                else:
                    self.cookies[key.strip()] = val
        conn.close()
        self.requests += 1
        location = response.getheader("Location") or ""
        if location.startswith("http://127.0.0.1"):
            location = location.split(str(self.port), 1)[1]
        return response.status, location, text


#: the bare flow a sign-in is compared with: issue 22's "bare 8-request flow"
BARE_FLOW = 8
#: ``passthrough``'s request: the discovery document a relying party fetches, a host page that
#: costs the host little, so the middleware's share of it is as large as it gets
PASSTHROUGH_PATH = "/.well-known/openid-configuration"


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    if found is None:
        raise RuntimeError(f"no {name} on the page: {page[:300]!r}")
    return html.unescape(found.group(1))


def authorize_path(client_id: str) -> str:
    params = {"client_id": client_id, "response_type": "code", "scope": "openid",
              "redirect_uri": REDIRECT_URI, "state": "s", "nonce": random_id()}  # fmt: skip
    return "/authorize?" + urlencode(params)


def sign_in(port: int, client_id: str, user: str, secret: str | None) -> int:
    """One whole sign-in as a browser makes it; returns its number of requests."""
    b = Browser(port)
    here = authorize_path(client_id)
    status, location, page = b.send("GET", here)
    while not location.startswith(REDIRECT_URI):
        if status in (301, 302, 303, 307):
            here = location
            status, location, page = b.send("GET", here)
            continue
        if 'name="password"' in page:  # the login form
            form = {"csrf_token": hidden(page, "csrf_token"), "username": user,
                    "password": PASSWORD, "next": hidden(page, "next")}  # fmt: skip
            status, location, page = b.send("POST", "/login", form)
        elif 'name="code"' in page and secret is not None:  # the MFA page
            form = {"action": "verify", "csrf_token": hidden(page, "csrf_token"),
                    "method_id": hidden(page, "method_id"),
                    "code": pyotp.TOTP(secret).now()}  # fmt: skip
            status, location, page = b.send("POST", here, form)  # the page posts to itself
        else:
            raise RuntimeError(f"sign-in of {user} stuck at {status} {location}: {page[:400]!r}")
    if "code=" not in location:
        raise RuntimeError(f"sign-in of {user} ended without a code: {location}")
    return b.requests


def bare_flow(port: int, requests: int) -> int:
    b = Browser(port)
    for _ in range(requests):
        status, _, _ = b.send("GET", "/ok")
        assert status == 200
    return requests


def run_clients(c: int, seconds: float, one: Callable[[int], int]) -> tuple[float, int]:
    """``c`` threads calling ``one(i)`` (i counts up across threads) for ``seconds``:
    (completed calls per second, requests)."""
    stop = time.monotonic() + seconds
    done: list[int] = []
    counter = iter(range(10**9))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def loop() -> None:
        while time.monotonic() < stop:
            with lock:
                i = next(counter)
            try:
                done.append(one(i))
            except BaseException as exc:  # reported below: a failed sign-in is no figure
                errors.append(exc)
                return

    start = time.monotonic()
    threads = [threading.Thread(target=loop) for _ in range(c)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return len(done) / (time.monotonic() - start), sum(done)


class Idp:
    """One example IdP on one store with one password-hash setting, served by gunicorn."""

    def __init__(self, tmp: Path, store: str, redis_url: str, params: PasswordHashSettings,
                 directory: Path, source: str = "", access_log: bool = False) -> None:  # fmt: skip
        self.name = f"{store}@baseline" if source else store
        self.folder = tmp / f"idp-{store}-{params.memory_kib}{'-baseline' if source else ''}"
        self.folder.mkdir()
        # Its own folder: a baseline has its own database, key prefix and keys.
        config = write_config(self.folder, STORES[store](self.folder, redis_url))
        settings = write_settings(self.folder, params)
        instance = self.folder / "instance"
        # In process first: the instance (keys, databases) exists before the workers start, and
        # users are prepared through the package's API on the same store and key.
        self.app = create_app(instance_path=instance, issuer="http://127.0.0.1",
                              combinedreg_config=config, settings_path=settings,
                              directory_path=directory)  # fmt: skip
        client = self.app.test_client()
        reg = client.post("/register", json={"redirect_uris": [REDIRECT_URI]})
        assert reg.status_code == 201, reg.get_data(True)
        self.client_id: str = reg.get_json()["client_id"]
        self.reg: Any = self.app.extensions["example_idp"].registration
        self.env = {**({"PYTHONPATH": source} if source else {}),
                    "BENCH_IDP_INSTANCE": str(instance), "BENCH_IDP_CONFIG": str(config),
                    "BENCH_IDP_SETTINGS": str(settings),
                    "BENCH_IDP_DIRECTORY": str(directory)}  # fmt: skip
        self.access_log = access_log
        self.server = Gunicorn("example_idp_app:app", directory=self.folder, workers=2,
                               extra=SYNC, pythonpath=[SUPPORT], access_log=access_log,
                               env=self.env)  # fmt: skip
        self.next_user = 0
        #: (user, TOTP secret, method id, time step prepared for) of the verify's users
        self.verify_pool: list[tuple[str, str, str, int]] = []
        #: the verify's last rate (requests/s): how many users the next measurement prepares
        self.verify_rate = 0.0
        #: the users of the last verify lines, in the lines' order
        self.verify_batch: list[str] = []
        self.secrets: dict[str, str] = {}
        self.glass_cookie = ""

    def take_users(self, count: int) -> list[str]:
        first = self.next_user
        self.next_user += count
        if self.next_user > USERS:
            raise SystemExit(f"the benchmark's directory ran out of users ({USERS}): fewer rounds")
        return [f"u{n}" for n in range(first, first + count)]

    def add_totp(self, user: str) -> tuple[str, str]:
        reg, now = self.reg, self.reg.clock.now()
        secret, method_id = pyotp.random_base32(32), random_id()
        box = reg.info.ctx.box
        reg.store.add_method(
            MethodRecord(
                id=method_id, user_id=user, kind=MethodKind.TOTP, label="Authenticator app",
                created_at=now, data={"issuer": "Bench"}, counter=0, last_used_at=None,
                secret=box.encrypt(secret.encode(), context=secret_context(user, method_id)),
            ),
            limit=5,
            events=[],
        )  # fmt: skip
        return secret, method_id

    def verify_lines(self, count: int) -> Path:
        """``count`` users at the MFA step with a code for now (one wrk line each)."""
        reg, now = self.reg, self.reg.clock.now()
        cookie, prefix = reg.sessions.cookie_name, reg.config.web.prefix
        lines = self.folder / f"verify-{self.next_user}.tsv"
        # A user's method takes one code per time step (replay protection): users prepared in
        # an earlier step are prepared again with a new session, before new users are made.
        step = int(now // 30)
        ready = [entry for entry in self.verify_pool if entry[3] < step][:count]
        taken = {entry[0] for entry in ready}
        self.verify_pool = [entry for entry in self.verify_pool if entry[0] not in taken]
        fresh = [(user, *self.add_totp(user)) for user in self.take_users(count - len(ready))]
        self.verify_batch = [entry[0] for entry in [*ready, *fresh]]
        with lines.open("w") as out:
            for user, secret, method_id, *_ in [*ready, *fresh]:
                self.verify_pool.append((user, secret, method_id, step))
                session = reg.sessions.create(Flow.start(user, now))
                query = urlsplit(authorize_path(self.client_id)).query
                cid = reg.flow.add_continuation(session, "/authorize", query, now)
                reg.sessions.save(session)
                body = urlencode({"action": "verify", "method_id": method_id,
                                  "csrf_token": session.csrf_token,
                                  "code": pyotp.TOTP(secret).at(now)})  # fmt: skip
                out.write(f"{prefix}/mfa?c={cid}\t{cookie}={session.sid}\t{body}\n")
        return lines

    def release_unsent(self, got: WrkResult) -> None:
        """The users of the last verify lines that wrk did not send are ready again at once
        (their method took no code): the margin prepared for each measurement is mostly not
        sent, and without this a quiet machine's run ran out of users."""
        unsent = {user for n, user in enumerate(self.verify_batch) if not line_was_sent(got, n)}
        self.verify_pool = [(u, s, m, -1 if u in unsent else step)
                            for u, s, m, step in self.verify_pool]  # fmt: skip

    def issue_lines(self, count: int) -> Path:
        """``count`` authorization requests of the signed-in break-glass user (GET lines)."""
        if not self.glass_cookie:
            b = Browser(self.server.port)
            sign_in_glass(b, self.client_id)
            self.glass_cookie = "; ".join(f"{k}={v}" for k, v in b.cookies.items())
        lines = self.folder / f"issue-{time.monotonic_ns()}.tsv"
        with lines.open("w") as out:
            for _ in range(count):
                out.write(f"{authorize_path(self.client_id)}\t{self.glass_cookie}\t\n")
        return lines

    def signin_users(self, count: int) -> list[tuple[str, str]]:
        return [(user, self.add_totp(user)[0]) for user in self.take_users(count)]

    def served_again(self, *, middleware: bool) -> Gunicorn:
        """This IdP served by servers of its own, with the middleware or with it taken out of
        its WSGI stack (support/example_idp_app.py): ``passthrough``'s pair, which serve
        nothing else (an A/A run, the middleware on both sides, had the server that had served
        the other measures 2-3% slower at eight connections than a fresh one)."""
        flag = "" if middleware else "1"
        return Gunicorn("example_idp_app:app", directory=self.folder / f"served-again{flag}",
                        workers=2, extra=SYNC, pythonpath=[SUPPORT], access_log=self.access_log,
                        env={**self.env, "BENCH_IDP_WITHOUT_MIDDLEWARE": flag})  # fmt: skip

    def close(self) -> None:
        self.reg.store.close()


def sign_in_glass(b: Browser, client_id: str) -> None:
    status, location, page = b.send(
        "GET", "/login?" + urlencode({"next": authorize_path(client_id)})
    )
    form = {"csrf_token": hidden(page, "csrf_token"), "username": "glass", "password": PASSWORD,
            "next": hidden(page, "next")}  # fmt: skip
    status, location, _ = b.send("POST", "/login", form)
    assert status == 302, status
    status, location, _ = b.send("GET", location)
    assert status == 302 and location.startswith(REDIRECT_URI), (status, location)


def line(name: str, c: int, rps: float, cpu_ms: float, extra: str = "") -> str:
    return f"  {name:<28} c={c}: {rps:8.1f}/s  worker CPU {cpu_ms:6.3f} ms/request{extra}"


class Measured:
    def __init__(self) -> None:
        self.ratios: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def add(self, key: str, ratio: float | None, cpu_ms: float) -> None:
        if ratio is not None:
            self.ratios.setdefault(key, []).append(ratio)
        self.cpu.setdefault(key, []).append(cpu_ms)

    def report(self) -> None:
        for key in self.cpu:
            cpu = statistics.median(self.cpu[key])
            ratios = self.ratios.get(key, [])
            each = " ".join(f"{v:.2f}" for v in ratios)
            ratio = f"ratio {statistics.median(ratios):.2f} (of {each})" if ratios else ""
            print(f"  {key:<40} {ratio:<40} worker CPU {cpu:.3f} ms/request (median)")


def measured_wrk(server: Gunicorn, c: int, seconds: float, tmp: Path, lines: Path | None,
                 expect: int, path: str = "") -> tuple[WrkResult, float]:  # fmt: skip
    """wrk against ``server`` (without ``lines``: the GET of ``path``, through the same Lua
    calls per request as lines, support/load.py); (result, worker CPU ms per request)."""
    assert server.process is not None
    before = worker_cpu(server.process.pid)
    got = run_wrk(server.url + path, connections=c, seconds=seconds, workdir=tmp, lines=lines,
                  expect_status=expect, scripted=True)  # fmt: skip
    cpu = worker_cpu(server.process.pid) - before
    return got, 1000 * cpu / max(got.requests, 1)


def bare_get(bare: Gunicorn, c: int, seconds: float, tmp: Path, results: Measured) -> WrkResult:
    """The bare view's GET, measured just before the measurement it is the reference of: the
    machine's speed drifts within seconds here (a round of every store took half a minute, and
    its last measurement's ratio drifted with it)."""
    base, cpu = measured_wrk(bare, c, seconds, tmp, None, 200, "/ok")
    if base.errors:
        raise SystemExit(f"the bare view answered {base.errors} requests with errors")
    results.add(f"bare GET c={c}", None, cpu)
    print(line("bare Flask GET", c, base.rps, cpu), flush=True)
    return base


def bare_flows(bare: Gunicorn, c: int, seconds: float, results: Measured) -> float:
    """The bare 8-request flows per second, measured just before the sign-in it is the
    reference of (as :func:`bare_get`)."""
    assert bare.process is not None
    before = worker_cpu(bare.process.pid)
    flows, requests = run_clients(c, seconds, lambda _: bare_flow(bare.port, BARE_FLOW))
    cpu = 1000 * (worker_cpu(bare.process.pid) - before) / max(requests, 1)
    results.add(f"bare {BARE_FLOW}-request flow c={c}", None, cpu)
    print(line(f"bare {BARE_FLOW}-request flow", c, flows, cpu), flush=True)
    return flows


def passthrough(with_mw: Gunicorn, without: Gunicorn, c: int, seconds: float, tmp: Path,
                results: Measured, turn: int) -> None:  # fmt: skip
    """``passthrough``: the same GET of a host page through the IdP with and without the
    middleware, in one-second runs alternating ABBA (the machine's speed drifts within seconds
    here: whole runs one after the other spread by a sixth either way); the ratio is with /
    without (at least 0.97: the middleware's cost within 1.03x of the host's), and the ratio of
    the two sides' worker CPU per request (at most 1.03)."""
    requests = {"with": 0, "without": 0}
    spent = {"with": 0.0, "without": 0.0}
    sides = ("with", "without") if turn % 2 == 0 else ("without", "with")
    for second in range(max(1, round(seconds))):
        for name in sides if second % 2 == 0 else sides[::-1]:
            server = with_mw if name == "with" else without
            assert server.process is not None
            before = worker_cpu(server.process.pid)
            got = run_wrk(server.url + PASSTHROUGH_PATH, connections=c, seconds=1, workdir=tmp,
                          expect_status=200, scripted=True)  # fmt: skip
            spent[name] += worker_cpu(server.process.pid) - before
            if got.errors:
                raise SystemExit(f"{PASSTHROUGH_PATH} answered {got.errors} errors ({name})")
            requests[name] += got.requests
    cpu = {name: 1000 * spent[name] / max(requests[name], 1) for name in spent}
    ratio = requests["with"] / requests["without"]
    results.add(f"pass-through, without middleware c={c}", None, cpu["without"])
    results.add(f"pass-through, with middleware c={c}", ratio, cpu["with"])
    # The steadier figure through servers (wall-clock rounds spread by about 5% either way):
    # the workers' CPU per request with the middleware over without, at most 1.03.
    results.add(
        f"pass-through, CPU with / without c={c}", cpu["with"] / cpu["without"], cpu["with"]
    )
    print(line("GET without middleware", c, requests["without"] / seconds, cpu["without"]))
    print(line("GET with middleware", c, requests["with"] / seconds, cpu["with"],
               f"  ratio {ratio:.3f}, CPU {cpu['with'] / cpu['without']:.3f}x"), flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="sqlite,redis,postgres", help=f"of {', '.join(STORES)}")
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--levels", default="1,8", help="concurrencies")
    parser.add_argument("--measures", default="verify,issue,signin,signin-hash,passthrough")
    parser.add_argument("--access-log", action="store_true",
                        help="gunicorn logs every request to a file (both servers)")  # fmt: skip
    parser.add_argument("--baseline", default="",
                        help="a source tree (e.g. a git worktree of an earlier commit) served "
                             "beside this one on each store, in the same rounds")  # fmt: skip
    args = parser.parse_args()
    require_wrk()
    stores = args.stores.split(",")
    measures = args.measures.split(",")
    levels = [int(x) for x in args.levels.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-idp-") as name, contextlib.ExitStack() as stack:
        tmp = Path(name)
        redis_url = ""
        if "redis" in stores:
            require_redis()
            redis = RedisServer(tmp / "redis").start()
            stack.callback(redis.stop)
            redis_url = redis.url
        if "postgres" in stores:
            from postgres_servers import PostgresServer  # psycopg: only when asked for

            POSTGRES.append(PostgresServer().start())
            stack.callback(POSTGRES[0].destroy)
        hash_sets = [("near-free", NEAR_FREE)]
        if "signin-hash" in measures:
            hash_sets.append(("example", EXAMPLE))
        idps: dict[tuple[str, str], Idp] = {}
        for label, params in hash_sets:
            directory = tmp / f"directory-{label}.toml"
            write_directory(directory, params.hasher())
            for store in stores:
                for source in ["", args.baseline] if args.baseline else [""]:
                    idp = Idp(tmp, store, redis_url, params, directory, source, args.access_log)
                    stack.callback(idp.close)
                    idps[(idp.name, label)] = idp
        bare = Gunicorn("bench_app:bare", directory=tmp / "bare", workers=2, extra=SYNC,
                        pythonpath=[SUPPORT], access_log=args.access_log)  # fmt: skip
        stack.enter_context(bare)
        for idp in idps.values():
            stack.enter_context(idp.server)
        pair: tuple[Gunicorn, Gunicorn] | None = None
        if "passthrough" in measures:
            # One store's IdP is enough: a request the middleware does not own touches none.
            first = idps[(stores[0], "near-free")]
            pair = (stack.enter_context(first.served_again(middleware=True)),
                    stack.enter_context(first.served_again(middleware=False)))  # fmt: skip
        print(f"The example IdP through gunicorn (2 sync workers) beside a bare Flask app, "
              f"{args.rounds} rounds of {args.seconds:.0f} s; stores {', '.join(stores)}")  # fmt: skip
        results = Measured()
        #: requests per sign-in, by IdP (each counted in its warm-up sign-in)
        lengths: dict[str, int] = {}
        for c in levels:
            # Warm every server alike (imports, templates, first connections).
            warm = run_wrk(bare.url + "/ok", connections=c, seconds=1, workdir=tmp)
            for (_, label), idp in idps.items():
                if label == "near-free":
                    got = run_wrk(idp.server.url, connections=c, seconds=1, workdir=tmp,
                                  lines=idp.verify_lines(int(warm.rps * 0.6) + 50),
                                  expect_status=303)  # fmt: skip
                    idp.release_unsent(got)
                    idp.verify_rate = got.rps
                users = idp.signin_users(c)
                lengths[idp.name] = sign_in(idp.server.port, idp.client_id, *users[0])
            variants = [name for name, label in idps if label == "near-free"]
            for server in pair or ():
                run_wrk(server.url + PASSTHROUGH_PATH, connections=c, seconds=1, workdir=tmp)
            for turn in range(args.rounds):
                if pair is not None:
                    passthrough(*pair, c, args.seconds, tmp, results, turn)
                # Each round in the other order: none always runs first after the bare view.
                order = variants if turn % 2 == 0 else variants[::-1]
                for store in order:
                    idp = idps[(store, "near-free")]
                    if "verify" in measures:
                        base = bare_get(bare, c, args.seconds, tmp, results)
                        # As many users as the verify's last rate with a margin (each is used
                        # once; too few would show as errors), at most the bare view's worth.
                        ceiling = base.rps * args.seconds * 1.1 + 100
                        count = min(ceiling, idp.verify_rate * args.seconds * 3 + 300)
                        lines = idp.verify_lines(int(count))
                        got, cpu = measured_wrk(idp.server, c, args.seconds, tmp, lines, 303)
                        idp.release_unsent(got)
                        idp.verify_rate = max(got.rps, idp.verify_rate * 0.8)
                        if got.errors:  # too few prepared users: repeated lines, no figure
                            idp.verify_rate *= 2
                        else:
                            results.add(f"verify {store} c={c}", got.rps / base.rps, cpu)
                        print(line(f"verify POST, {store}", c, got.rps, cpu,
                                   f"  ratio {got.rps / base.rps:.2f}  errors {got.errors}"),
                              flush=True)  # fmt: skip
                    if "issue" in measures:
                        base = bare_get(bare, c, args.seconds, tmp, results)
                        lines = idp.issue_lines(int((base.rps * args.seconds * 1.1 + 100) * 0.5))
                        got, cpu = measured_wrk(idp.server, c, args.seconds, tmp, lines, 302)
                        results.add(f"code issuance {store} c={c}", got.rps / base.rps, cpu)
                        print(line(f"code issuance, {store}", c, got.rps, cpu,
                                   f"  ratio {got.rps / base.rps:.2f}  errors {got.errors}"),
                              flush=True)  # fmt: skip
                for (store, label), idp in sorted(idps.items(), reverse=turn % 2 == 1):
                    name = "signin" if label == "near-free" else "signin-hash"
                    if name not in measures:
                        continue
                    flows = bare_flows(bare, c, args.seconds, results)
                    users = idp.signin_users(int(flows * args.seconds * 1.2) + 2 * c)
                    port, cid = idp.server.port, idp.client_id
                    assert idp.server.process is not None
                    before = worker_cpu(idp.server.process.pid)
                    got_flows, requests = run_clients(
                        c, args.seconds, lambda i, p=port, k=cid, u=users: sign_in(p, k, *u[i])
                    )
                    cpu = 1000 * (worker_cpu(idp.server.process.pid) - before) / max(requests, 1)
                    key = f"sign-in ({label} hash) {store} c={c}"
                    results.add(key, got_flows / flows, cpu)
                    # the same as requests per second, against the bare flow's
                    shape = got_flows * lengths[store] / (flows * BARE_FLOW)
                    results.add(f"{key} per request", shape, cpu)
                    print(line(f"sign-in, {label} hash, {store}", c, got_flows, cpu,
                               f"  ratio {got_flows / flows:.2f}, per request {shape:.2f}"),
                          flush=True)  # fmt: skip
        counted = ", ".join(f"{name} {n}" for name, n in lengths.items())
        print(f"Medians (requests per sign-in: {counted}; ratios against the bare figure measured "
              "just before each; the machine's load shows in wall-clock ratios, less in CPU):")  # fmt: skip
        results.report()


if __name__ == "__main__":
    main()
