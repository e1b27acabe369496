"""Persistence: the :class:`Store` protocol, its records and the backends.

``SqliteStore`` is the embedded default; ``MemoryStore`` is an in-process fake for unit tests (it
passes the same contract tests but is never shared between processes, so never use it to serve).
"""

from __future__ import annotations

from .base import AuditEvent, MethodRecord, Store, UserState
from .memory import MemoryStore
from .sqlite import SqliteStore

__all__ = ["AuditEvent", "MemoryStore", "MethodRecord", "SqliteStore", "Store", "UserState"]
