"""Who a policy applies to: all users or selected groups/users, minus exclusions (exclusion wins)."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

from ..config.reader import Reader

__all__ = ["Audience", "read_audience"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Audience:
    all_users: bool = True
    include_groups: frozenset[str] = frozenset()
    include_users: frozenset[str] = frozenset()
    exclude_groups: frozenset[str] = frozenset()
    exclude_users: frozenset[str] = frozenset()

    def contains(self, user_id: str, groups: Set[str]) -> bool:
        if user_id in self.exclude_users or not self.exclude_groups.isdisjoint(groups):
            return False
        if self.all_users:
            return True
        return user_id in self.include_users or not self.include_groups.isdisjoint(groups)


def read_audience(r: Reader, *, default_all: bool = True) -> Audience:
    """Read ``users = "all" | "selected"``, ``include_groups``, ``include_users``, ``exclude_*``."""
    users = r.string("users", "all" if default_all else "selected", choices=("all", "selected"))
    audience = Audience(
        all_users=users == "all",
        include_groups=frozenset(r.str_list("include_groups")),
        include_users=frozenset(r.str_list("include_users")),
        exclude_groups=frozenset(r.str_list("exclude_groups")),
        exclude_users=frozenset(r.str_list("exclude_users")),
    )
    if audience.all_users and (audience.include_groups or audience.include_users):
        r.error("users", 'expected "selected" when include_groups or include_users is given')
    return audience
