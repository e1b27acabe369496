"""The round trips to PostgreSQL of an MFA verify, through the whole WSGI stack (issue 21.6),
counted from libpq's own trace of the frontend's messages: each ``Query`` (simple protocol) and
each ``Sync`` (the end of an extended-protocol exchange, pipelined ``executemany`` included) is one
round trip. A change that adds one fails here; what each one is, is listed in ``VERIFY``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from plain_wsgi_host import DictDirectory, make_app
from psycopg import pq
from webtest import (
    Browser,
    assert_method_removed_after_read_is_refused,
    base_config,
    cid_of,
    code_from,
    location,
    post_with_change_after_read,
    stored_conts,
)

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.store.postgres import PostgresStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from postgres_servers import PostgresServer  # noqa: E402

#: what an MFA verify with an authenticator app sends, in order (a statement psycopg has
#: prepared, after 5 uses on the connection, shows as "(prepared)": its text is not sent again;
#: the one round trip that prepares it is not counted)
VERIFY = [
    # the session with its user's methods in use and state, one statement (decision 218;
    # before: the session, then the method the form names)
    "SELECT",
    # one statement, atomic on its own (autocommit: no BEGIN, no COMMIT): the throttle's limits
    # checked on the locked counters, the TOTP step advanced (compare-and-set), its audit event,
    # the account's failure counters cleared, and the upgraded session saved under its new id
    # while the one it replaces is live. Before issue 22 (9 round trips): BEGIN, the attempt
    # counted, the UPDATE, the INSERT, the DELETE, the session save, COMMIT.
    "WITH",
]


def _round_trips(trace: Path, start: int) -> list[str]:
    """The frontend's Query texts and Parse texts of each Sync'ed exchange since ``start``."""
    trips: list[str] = []
    parsed, multiline, executed = "", False, False
    for line in trace.read_text(errors="replace")[start:].splitlines():
        if multiline and line.strip():  # a statement that starts on a new line
            parsed, multiline = line.split()[0], False
            continue
        parts = [*line.split("\t"), ""]
        if len(parts) < 4 or parts[0] != "F":
            continue
        kind, body = parts[2], parts[3]
        if kind == "Query":
            trips.append(body.strip().strip('"').split()[0])
        elif kind == "Parse" and not parsed:
            text = body.split('"')[3] if body.count('"') >= 4 else ""
            parsed, multiline = (text.split()[0], False) if text.strip() else ("", True)
        elif kind == "Bind" and not parsed:
            parsed = "(prepared)"
        elif kind == "Execute":
            executed = True
        elif kind == "Sync":
            # A Parse alone is psycopg preparing a statement used 5 times on this connection:
            # once per connection and statement, not a round trip of every verify.
            if executed:
                trips.append(parsed or "?")
            parsed, executed = "", False
    return trips


@pytest.fixture
def traced(tmp_path: Path, clock: FrozenClock) -> Iterator[tuple[Browser, Path]]:
    server = PostgresServer().start()
    dsn = server.create_database("creg")
    # One connection, so every call of the request goes through the traced one.
    store = PostgresStore(dsn, clock=clock, min_size=1, max_size=1)
    trace = tmp_path / "libpq.trace"
    handle = trace.open("wb")
    with store._pool.connection() as conn:
        conn.pgconn.trace(handle.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
    reg, host = make_app(
        parse_config(base_config(tmp_path)), DictDirectory(), store=store, clock=clock
    )
    try:
        yield Browser(reg, host, clock), trace
    finally:
        store.close()
        handle.close()
        server.destroy()


def test_an_mfa_verify_makes_two_round_trips(traced: tuple[Browser, Path]) -> None:
    browser, trace = traced
    mfa_url, form = browser.at_mfa_with_totp()
    start = len(trace.read_text(errors="replace"))
    r = browser.post(mfa_url, data=form)
    # straight back to /authorize: the continuation taken back in the planned session's save
    assert r.status_code == 303 and location(r) == "/authorize?client_id=demo&state=s1"
    trips = _round_trips(trace, start)
    assert len(trips) == len(VERIFY), str(trips)
    assert all(got in (want, "(prepared)") for got, want in zip(trips, VERIFY, strict=True)), trips
    assert cid_of(mfa_url) not in stored_conts(browser)


def test_a_session_ended_during_the_verify_stays_ended(
    traced: tuple[Browser, Path],
) -> None:
    """'Sign out everywhere' in another tab after this request loaded its session, before its
    code is checked: the statement that uses the code saves the upgraded session only while the
    session it replaces is live, so neither id opens a session afterwards; the code is used and
    its success audited, as on the other stores (decision 168)."""
    browser, _ = traced
    store = browser.reg.store
    mfa_url, form = browser.at_mfa_with_totp()

    def sign_out_everywhere(user_id: str, method_id: str, record: object) -> None:
        assert store.delete_user_sessions(user_id) == 1

    r = post_with_change_after_read(browser, store, mfa_url, form, sign_out_everywhere)

    assert r.status_code == 403
    assert store.delete_user_sessions("alice") == 0, "no session of alice is live"
    assert browser.get_json("/security-info/").status_code in (401, 403)
    assert len(store.list_audit(event_prefix="mfa.succeeded", limit=100)) == 1


def test_a_cleared_authorize_is_one_round_trip(traced: tuple[Browser, Path]) -> None:
    """A cleared /authorize moments after the last: the session, the user's methods and state in
    one statement (decision 218; before: three), and no save of the session it left as it was
    (decision 205)."""
    browser, trace = traced
    mfa_url, form = browser.at_mfa_with_totp()
    authorize = location(browser.post(mfa_url, data=form))
    assert code_from(browser.get(authorize)) is not None
    browser.clock.advance(5)
    start = len(trace.read_text(errors="replace"))
    assert code_from(browser.get(authorize)) is not None
    assert _round_trips(trace, start) in (["SELECT"], ["(prepared)"])


def test_a_method_removed_after_the_sessions_load_is_refused(
    traced: tuple[Browser, Path],
) -> None:
    """The verify reads its method from the session's load (decision 218); removed from
    elsewhere after that load, before the code is used: the statement that uses the code finds
    it gone."""
    browser, _ = traced
    assert_method_removed_after_read_is_refused(browser, browser.reg.store)


def test_the_benchmarks_floor_makes_as_many_round_trips() -> None:
    """benchmarks/mfa_verify.py's PostgreSQL floor imitates the verify's round trips: one number,
    checked here against the verify's own count (it said 3 after the verify made 2)."""
    from benchmarks.support.bench_app import POSTGRES_VERIFY_ROUND_TRIPS

    assert POSTGRES_VERIFY_ROUND_TRIPS == len(VERIFY)
