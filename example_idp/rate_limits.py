"""Windowed counters of the example IdP's anonymous entry points: one source for ``/par``
(par_limits.py), client authentication at ``/token`` and ``/par`` (client_auth.py) and ``/register``
(registration_limits.py).

A counter is the rows of its key in ``rate_counts`` (IdP's sqlite) younger than its window: nothing
durable, and a refused request is never counted (a refused caller cannot keep its own window full).
Each row carries the end of its window (``until``), so the rows of every window are purged by one
indexed statement, whatever window each counter has. Over a limit the caller is answered 429 with
``Retry-After`` (RFC 6585 4) in the JSON error format of the endpoint (RFC 6749 5.2, RFC 7591 3.2.2).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any, TypeVar

from flask import jsonify
from flask.typing import ResponseReturnValue

from oidc_combinedreg.clock import Clock

from .db import Database

__all__ = ["Refused", "WindowedCounts", "refused_response", "whole_number_settings"]

T = TypeVar("T")


class Refused(Exception):
    """Over a limit: answer 429 with ``Retry-After`` (RFC 6585 4)."""

    def __init__(self, retry_after: float, reason: str) -> None:
        super().__init__(reason)
        self.retry_after = max(1, math.ceil(retry_after))
        self.reason = reason


def refused_response(refused: Refused) -> ResponseReturnValue:
    """429, the JSON error format of the token and registration endpoints (RFC 6749 5.2, RFC 7591
    3.2.2) with RFC 6749 4.1.2.1's code for "try again later", and when (RFC 6585 4)."""
    body = {"error": "temporarily_unavailable", "error_description": refused.reason}
    headers = {"Retry-After": str(refused.retry_after), "Cache-Control": "no-store"}
    return jsonify(body), 429, headers


def whole_number_settings(cls: type[T], raw: Any, where: str, **other: type) -> T:
    """A settings table ``cls`` (a dataclass) checked: no unknown keys, whole numbers of at least 1,
    ``other`` keys of their own type (such as ``open: bool``)."""
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a table ({', '.join(names)})")
    unknown = set(raw) - set(names)
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    for key, value in raw.items():
        if key in other:
            if not isinstance(value, other[key]):
                raise ValueError(f"{where}.{key}: expected {other[key].__name__}")
        elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{where}.{key}: expected a whole number of at least 1")
    return cls(**raw)


class WindowedCounts:
    """Counters over sliding windows, in ``rate_counts``; keys are ``<use>:<what>``."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def now(self) -> float:
        return self._clock.now()

    def take(self, key: str, allowed: int, window: int, reason: str) -> None:
        """Count one for ``key``; Refused (not counted) when ``allowed`` are in the window."""
        now = self._clock.now()
        with self._db.transaction() as conn:
            wait = self.wait(conn, key, allowed, window, now)
            if wait > 0:
                raise Refused(wait, reason)
            self.add(conn, [key], window, now)

    #: the ``allowed``-th newest count of a key in its window, through ``rate_counts_key``
    _NTH = "SELECT at FROM rate_counts WHERE key = ? AND at > ? ORDER BY at DESC LIMIT 1 OFFSET ?"

    @classmethod
    def wait(
        cls, conn: sqlite3.Connection, key: str, allowed: int, window: int, now: float
    ) -> float:
        """Seconds until fewer than ``allowed`` counts of ``key`` are in the window (0: now)."""
        row = conn.execute(cls._NTH, (key, now - window, allowed - 1)).fetchone()
        return 0.0 if row is None else float(row[0]) + window - now

    @staticmethod
    def add(conn: sqlite3.Connection, keys: Iterable[str], window: int, now: float) -> None:
        """Count one for each key; the rows whose window ended (any counter's) go first."""
        conn.execute("DELETE FROM rate_counts WHERE until <= ?", (now,))  # rate_counts_until
        conn.executemany(
            "INSERT INTO rate_counts (key, at, until) VALUES (?, ?, ?)",
            [(key, now, now + window) for key in keys],
        )

    def waits(self, keys: Mapping[str, tuple[int, int]]) -> dict[str, float]:
        """``wait`` of each key (``allowed``, ``window``): one statement, reading only (a token
        request reads its address's and its client's counters at once)."""
        now = self._clock.now()
        subqueries = ", ".join(f"({self._NTH})" for _ in keys)
        args = [
            a for key, (allowed, window) in keys.items() for a in (key, now - window, allowed - 1)
        ]
        row = self._db.fetch_one(f"SELECT {subqueries}", args)
        assert row is not None  # a SELECT without FROM has its one row
        return {
            key: 0.0 if at is None else float(at) + window - now
            for (key, (_, window)), at in zip(keys.items(), row, strict=True)
        }

    def count(self, keys: Iterable[str], window: int) -> None:
        now = self._clock.now()
        with self._db.transaction() as conn:
            self.add(conn, keys, window, now)

    def clear(self, key: str) -> None:
        self._db.execute("DELETE FROM rate_counts WHERE key = ?", (key,))
