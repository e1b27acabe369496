"""What a host's own tests need, from one documented place (docs/python-api.md).

::

    from oidc_combinedreg.testing import FrozenClock, MemoryStore, RecordingSender

    clock, sender = FrozenClock(1_700_000_000), RecordingSender()
    reg = CombinedRegistration(app, config=config, directory=directory, authorization=endpoint,
                               store=MemoryStore(clock=clock), clock=clock,
                               delivery=sender.delivery())
    ...
    code = sender.last_code(to="+14155550100")   # the code the user was texted
    clock.advance(31)                            # the next TOTP step, without sleeping

``MemoryStore`` lives in one process only: for tests, never to serve (use ``SqliteStore`` or
Redis). ``SqliteStore(":memory:")``-style files under a temporary folder test the real backend.
"""

from __future__ import annotations

from .clock import FrozenClock
from .delivery.recording import RecordingSender
from .store.memory import MemoryStore

__all__ = ["FrozenClock", "MemoryStore", "RecordingSender"]
