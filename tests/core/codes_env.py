"""A SecurityInfo over a MemoryStore, a FrozenClock and a RecordingSender, for service tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.config import parse_config
from oidc_combinedreg.crypto import fast_hasher_for_tests, generate_key
from oidc_combinedreg.delivery.recording import RecordingSender
from oidc_combinedreg.directory import DirectoryUser, PerUserMfa
from oidc_combinedreg.service import SecurityInfo
from oidc_combinedreg.store import MemoryStore

T0 = 1_700_000_000.0
KEY = generate_key()


@dataclass
class Users:
    """A Directory in a dict."""

    users: dict[str, DirectoryUser] = field(default_factory=dict)

    def get_user(self, user_id: str) -> DirectoryUser | None:
        return self.users.get(user_id)

    def set_password(self, user_id: str, new_password: str) -> None:
        raise NotImplementedError

    def set_per_user_mfa(self, user_id: str, state: PerUserMfa) -> None:
        raise NotImplementedError


@dataclass
class Env:
    info: SecurityInfo
    sender: RecordingSender
    clock: FrozenClock
    store: MemoryStore
    directory: Users


class UnserializedMemoryStore(MemoryStore):
    """A MemoryStore that answers like Redis to ``serialized()``: code checks then take the path
    where each store call is atomic on its own (the attempt counted first, in its own call)."""

    def serialized(self) -> bool:
        return False


def make_env(*, office_phone: str | None = None, serialized: bool = True, **sections: Any) -> Env:
    data: dict[str, Any] = {
        "general": {"organization": "Contoso", "environment": "development"},
        "secrets": {"encryption_keys": [KEY]},
        "delivery": {"public_url": "https://idp.example.test"},
    }
    data.update(sections)
    config = parse_config(data)
    clock = FrozenClock(T0)
    store = MemoryStore(clock=clock) if serialized else UnserializedMemoryStore(clock=clock)
    sender = RecordingSender()
    directory = Users(
        {
            "alice": DirectoryUser(
                id="alice", email="alice@corp.example", office_phone=office_phone
            ),
            "bob": DirectoryUser(id="bob"),
        }
    )
    info = SecurityInfo(
        config=config, store=store, clock=clock, directory=directory, delivery=sender.delivery()
    )
    info.questions.hasher = fast_hasher_for_tests()
    return Env(info=info, sender=sender, clock=clock, store=store, directory=directory)
