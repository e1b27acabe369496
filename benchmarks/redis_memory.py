"""Bytes per user in Redis for a user with three methods (target: under 2 KB).

    python benchmarks/redis_memory.py [--users 2000] [--url redis://127.0.0.1:6379/0]

Without ``--url`` it starts its own ``redis-server`` on a free loopback port (persistence off) and
stops it at the end; with ``--url`` it FLUSHES THAT DATABASE first, so never point it at real data.
Each user gets what the wizard leaves behind: an authenticator app (encrypted seed), a mobile
phone and a passkey (credential data and a globally unique credential id), a user state, and the
three "method.added" audit events. Figures printed:

* ``MEMORY USAGE`` summed over one user's keys (what the user's own keys cost);
* the audit stream's ``MEMORY USAGE`` divided by the number of users (three events each);
* ``used_memory`` growth per user over all users, without and with the audit stream (adds Redis'
  own per-key bookkeeping: the keyspace dictionary entries).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "store"))

import redis  # noqa: E402
from redis_servers import RedisServer, require_redis  # noqa: E402

from oidc_combinedreg.clock import SystemClock  # noqa: E402
from oidc_combinedreg.crypto import SecretBox, bind_context, generate_key, parse_key  # noqa: E402
from oidc_combinedreg.methods.kinds import MethodKind  # noqa: E402
from oidc_combinedreg.store import AuditEvent, MethodRecord, UserState  # noqa: E402
from oidc_combinedreg.store.redis import RedisStore  # noqa: E402

BOX = SecretBox([parse_key(generate_key())])


def b64(n: int) -> str:
    return secrets.token_urlsafe(n)


def methods_of(user_id: str, now: float) -> list[MethodRecord]:
    totp_id, phone_id, key_id = b64(12), b64(12), b64(12)
    seed = BOX.encrypt(secrets.token_bytes(20), context=bind_context(user_id, totp_id))
    return [
        MethodRecord(
            id=totp_id, user_id=user_id, kind=MethodKind.TOTP, label="Authenticator app",
            created_at=now, data={"issuer": "Example Corp"}, secret=seed,
            counter=56_666_666, last_used_at=now,
        ),
        MethodRecord(
            id=phone_id, user_id=user_id, kind=MethodKind.MOBILE_PHONE, label="+1 XXXXXXX12",
            created_at=now + 1, data={"phone": "+15550100012"}, last_used_at=now + 1,
        ),
        MethodRecord(
            id=key_id, user_id=user_id, kind=MethodKind.WEBAUTHN, label="YubiKey 5",
            created_at=now + 2,
            data={"credential_data": b64(162), "user_handle": b64(16),
                  "aaguid": "cb69481e-8ff7-4039-93ec-0a2729a154a8", "alg": -7,
                  "backup_eligible": False, "fmt": "none"},
            counter=3, lookup=b64(32),
        ),
    ]  # fmt: skip


def populate(store: RedisStore, user_id: str, now: float) -> list[MethodRecord]:
    records = methods_of(user_id, now)
    for record in records:
        added = AuditEvent(
            at=now, event="method.added", user_id=user_id, outcome="success", ip="203.0.113.7",
            correlation_id=b64(12), detail={"kind": str(record.kind), "method_id": record.id},
        )  # fmt: skip
        store.add_method(record, limit=10, events=[added])
    store.put_user_state(
        UserState(user_id=user_id, default_method_id=records[0].id, confirmed_at=now)
    )
    return records


def key_bytes(client: redis.Redis, key: str) -> int:
    return int(client.memory_usage(key, samples=0) or 0)  # samples=0: every element counted


def user_key_bytes(client: redis.Redis, user_id: str, lookup: str) -> dict[str, int]:
    keys = [k.decode() for k in client.scan_iter(match=f"creg:{{u:{user_id}}}:*")]
    return {key: key_bytes(client, key) for key in [*keys, f"creg:lookup:{lookup}"]}


def measure(url: str, users: int) -> None:
    client = redis.Redis.from_url(url)
    client.flushdb()
    store = RedisStore.from_url(url, clock=SystemClock())
    now = SystemClock().now()
    before = int(client.info("memory")["used_memory"])
    last: list[MethodRecord] = []
    for i in range(users):
        last = populate(store, f"user{i:06d}@example.com", now)
    after = int(client.info("memory")["used_memory"])
    user_id, lookup = last[0].user_id, last[2].lookup or ""
    sizes = user_key_bytes(client, user_id, lookup)
    total, audit = sum(sizes.values()), key_bytes(client, "creg:audit")
    growth = (after - before) / users
    print(f"Redis {client.info('server')['redis_version']}, {users} users with 3 methods each")
    for key, size in sorted(sizes.items()):
        print(f"  {size:6d} B  {key.replace(user_id, '<user>').replace(lookup, '<credential id>')}")
    print(f"MEMORY USAGE of one user's keys: {total} B ({total / 2048:.2f} of the 2 KB target)")
    print(f"audit stream per user (3 events): {audit / users:.0f} B")
    print(f"used_memory growth per user: {growth - audit / users:.0f} B without the audit stream"
          f" ({(growth - audit / users) / 2048:.2f} of the target), {growth:.0f} B with it")  # fmt: skip
    store.close()
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--url", help="an existing Redis to FLUSH and measure")
    options = parser.parse_args()
    if options.url:
        measure(options.url, options.users)
        return
    require_redis()
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory)).start()
        try:
            measure(server.url, options.users)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
