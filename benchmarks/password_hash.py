"""What the example IdP's password hash costs a sign-in: sign-ins per second per core with the
argon2id parameters of idp.toml (OWASP's minimum: 19 MiB, t=2, p=1) against argon2-cffi's
defaults (64 MiB, t=3, p=4, what the example used before), as ratios in one run.

    python benchmarks/password_hash.py [--sign-ins 20] [--rounds 3]

A sign-in is the browser's requests of a password-only sign-in through the example IdP, in
process (Flask's test client, SQLite): the login page, the password POST, the /authorize that
issues the code. Measured in CPU time (``time.process_time``: this process, every thread, so the
p=4 hash's four lanes all count), not wall time: the machine is shared, and a core's worth of CPU
is what a sign-in takes from the server whatever else runs. "Per core" is 1 / CPU seconds.
The two IdPs are measured in alternating rounds; each figure is the median of the rounds.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from argon2 import PasswordHasher  # noqa: E402
from flask import Flask  # noqa: E402

from example_idp import create_app  # noqa: E402
from example_idp.settings import DEFAULT_SETTINGS_PATH, PasswordHashSettings  # noqa: E402
from oidc_combinedreg.crypto import random_id  # noqa: E402

REDIRECT_URI = "https://rp.example/cb"
USER = "breakglass"  # excluded from every interrupt: the password is the whole sign-in
#: argon2-cffi's defaults (RFC 9106's second recommended option, lower memory), the old hash
ARGON2_CFFI_DEFAULTS = PasswordHashSettings(memory_kib=65536, time_cost=3, parallelism=4)


def _table(params: PasswordHashSettings) -> str:
    return (
        f"[password_hash]\nmemory_kib = {params.memory_kib}\ntime_cost = {params.time_cost}\n"
        f"parallelism = {params.parallelism}\n"
    )


class SignIn:
    """An example IdP whose password hashes have ``params``; :meth:`run` signs in once."""

    def __init__(self, folder: Path, params: PasswordHashSettings) -> None:
        folder.mkdir()
        self.params = params
        settings = folder / "idp.toml"
        settings.write_text(
            DEFAULT_SETTINGS_PATH.read_text().split("[password_hash]")[0] + _table(params)
        )
        config = shutil.copy(ROOT / "example_idp" / "combinedreg.toml", folder / "combined.toml")
        self.app: Flask = create_app(
            instance_path=folder / "instance", combinedreg_config=config, settings_path=settings
        )
        reg = self.app.test_client().post("/register", json={"redirect_uris": [REDIRECT_URI]})
        self.client_id = reg.get_json()["client_id"]
        self.run()  # the seed hash is remade with ``params`` here (rehash at sign-in)

    def run(self) -> None:
        browser = self.app.test_client()
        params = {"client_id": self.client_id, "response_type": "code", "scope": "openid",
                  "redirect_uri": REDIRECT_URI, "state": "s", "nonce": random_id()}  # fmt: skip
        authorize = "/authorize?" + urlencode(params)
        page = browser.get("/login?" + urlencode({"next": authorize})).get_data(as_text=True)
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        form = {"csrf_token": token, "username": USER, "password": USER, "next": authorize}
        assert browser.post("/login", data=form).status_code == 302
        answer = browser.get(authorize)
        assert answer.status_code == 302 and "code=" in answer.headers["Location"], answer.status


def cpu_per_call(run: object, count: int) -> float:
    assert callable(run)
    start = time.process_time()
    for _ in range(count):
        run()
    return (time.process_time() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sign-ins", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        chosen = SignIn(Path(tmp) / "chosen", PasswordHashSettings())
        old = SignIn(Path(tmp) / "old", ARGON2_CFFI_DEFAULTS)
        costs: dict[str, list[float]] = {"chosen": [], "old": [], "hash chosen": [], "hash old": []}
        for _ in range(args.rounds):
            for name, subject in (("chosen", chosen), ("old", old)):
                costs[name].append(cpu_per_call(subject.run, args.sign_ins))
                hasher: PasswordHasher = subject.params.hasher()
                encoded = hasher.hash(USER)
                costs["hash " + name].append(
                    cpu_per_call(lambda h=hasher, e=encoded: h.verify(e, USER), args.sign_ins)
                )
    med = {name: statistics.median(values) for name, values in costs.items()}
    print("Sign-in through the example IdP (login page, password POST, code), CPU time per sign-in")
    print("(time.process_time, all threads; median of rounds; in process):")
    for name, label in (("old", "argon2-cffi defaults: 64 MiB, t=3, p=4"),
                        ("chosen", "idp.toml default: 19 MiB, t=2, p=1")):  # fmt: skip
        sign_in, hashing = med[name], med["hash " + name]
        print(f"  {label:<40} {sign_in * 1000:7.1f} ms = {1 / sign_in:6.1f} sign-ins/s per core;"
              f" the hash {hashing * 1000:6.1f} ms ({hashing / sign_in:4.0%} of it)")  # fmt: skip
    print(f"  ratio, sign-ins per core, chosen / old: {med['old'] / med['chosen']:.2f}")


if __name__ == "__main__":
    main()
