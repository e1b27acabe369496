"""Glue for frameworks and OAuth libraries: :mod:`.flask` (an ``init_app`` extension) and
:mod:`.authlib` (amr/acr/auth_time into Authlib's ID token). Each imports its framework only
when used; the core never imports them (docs/frameworks.md)."""

from __future__ import annotations

__all__: list[str] = []
