"""The example IdP purges its expired access tokens (the tokens table grew by one row per sign-in,
for good), cheaply: at most once a minute per process and through an index on the expiry, as the
day-old codes (tests/web/test_web_example_idp_issuance.py). The purges and counts that run at each
push and each failed login go through indexes too, not a read of the whole table. Decision 192."""

from __future__ import annotations

import time
from hashlib import sha256
from pathlib import Path

from idp_client import authorize_params, basic, exchange, pkce, registered, signed_in_code
from test_web_token_limits import make_idp

from oidc_combinedreg.clock import FrozenClock


def test_expired_tokens_are_purged_through_an_index_at_most_once_a_minute(
    tmp_path: Path, statements: list[str]
) -> None:
    clock = FrozenClock(time.time())
    idp = make_idp(tmp_path, clock)
    reg = registered(idp)
    server = idp.application.extensions["example_idp"].server
    lifetime = idp.application.extensions["example_idp"].settings.access_token_lifetime

    def issue() -> str:
        code, verifier = signed_in_code(idp, reg["client_id"])
        access: str = exchange(idp, reg, code, verifier)["access_token"]
        return access

    def kept(access: str) -> bool:
        row = server.tokens._db.fetch_one(
            "SELECT 1 FROM tokens WHERE token_hash = ?", (sha256(access.encode()).hexdigest(),)
        )
        return row is not None

    old = issue()
    statements.clear()
    issue()
    assert not [s for s in statements if s.startswith("DELETE FROM tokens")], statements
    clock.advance(lifetime + 1)  # both tokens expired
    statements.clear()
    new = issue()
    purges = [s for s in statements if s.startswith("DELETE FROM tokens")]
    assert len(purges) == 1, statements
    assert not kept(old)  # purged, not merely refused at /userinfo
    assert kept(new)
    assert idp.get("/userinfo", headers={"Authorization": f"Bearer {new}"}).status_code == 200
    plan = server.tokens._db.fetch_all(
        "EXPLAIN QUERY PLAN DELETE FROM tokens WHERE issued_at + expires_in < ?", (0,)
    )
    assert any("USING" in row["detail"] and "INDEX" in row["detail"] for row in plan), [
        row["detail"] for row in plan
    ]


def test_a_push_reads_the_pushed_requests_through_indexes_not_a_scan(
    tmp_path: Path, statements: list[str]
) -> None:
    """Each push purges the expired and spent requests and counts its client's pending ones (the
    cap, decision 186): both read the whole table before, at every push, however many requests
    other clients and addresses held. Now through indexes."""
    clock = FrozenClock(time.time())
    idp = make_idp(tmp_path, clock)
    reg = registered(idp)
    _, challenge = pkce()
    params = authorize_params(reg["client_id"], code_challenge=challenge,
                              code_challenge_method="S256")  # fmt: skip
    statements.clear()
    pushed = idp.post("/par", data=params, headers={"Authorization": basic(reg)})
    assert pushed.status_code == 201
    reads = [s for s in statements if "pushed_requests" in s and not s.startswith("INSERT")]
    assert len(reads) >= 2, statements  # the purge and the count
    db = idp.application.extensions["example_idp"].server.pushed._db
    for statement in reads:
        plan = [row["detail"] for row in db.fetch_all("EXPLAIN QUERY PLAN " + statement)]
        assert not [d for d in plan if d.startswith("SCAN pushed_requests")], (statement, plan)


def test_a_token_request_reads_its_limits_in_one_statement_and_writes_none(
    tmp_path: Path, statements: list[str]
) -> None:
    """The client authentication's counters (decision 190) cost a successful token request one
    read: the address's and the client's counters in one statement, nothing written."""
    clock = FrozenClock(time.time())
    idp = make_idp(tmp_path, clock)
    reg = registered(idp)
    code, verifier = signed_in_code(idp, reg["client_id"])
    statements.clear()
    exchange(idp, reg, code, verifier)
    counters = [s for s in statements if "rate_counts" in s]
    assert len(counters) == 1 and counters[0].startswith("SELECT"), counters


def test_a_failed_login_purges_the_old_failures_through_an_index(
    tmp_path: Path, statements: list[str]
) -> None:
    """Each counted failure deletes the failures older than the window (throttle.py): by a
    statement that read every row, however many other names and addresses had failed."""
    clock = FrozenClock(time.time())
    idp = make_idp(tmp_path, clock)
    html = idp.get("/login").get_data(as_text=True)
    csrf = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    statements.clear()
    form = {"csrf_token": csrf, "username": "alice", "password": "wrong", "next": "/"}
    assert idp.post("/login", data=form).status_code in (200, 400, 401)
    purges = [s for s in statements if s.startswith("DELETE FROM login_failures")]
    assert purges, statements
    db = idp.application.extensions["example_idp"].server.pushed._db
    for statement in purges:
        plan = [row["detail"] for row in db.fetch_all("EXPLAIN QUERY PLAN " + statement)]
        assert not [d for d in plan if d.startswith("SCAN login_failures")], (statement, plan)
