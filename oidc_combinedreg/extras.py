"""The optional dependencies (``pip install "oidc-combinedreg[redis]"``) and the error that names one.

A SQLite deployment without phones installs none of them (decision 90). The config reader asks
:func:`missing_extra` where a key needs one, so a missing extra is a config error at check or start
time, naming the command that installs it, never an ``ImportError`` in a request later.
"""

from __future__ import annotations

import importlib.util

__all__ = ["EXTRAS", "MissingExtra", "install_hint", "missing_extra", "require_extra"]

#: extra -> the modules it installs (what is looked for)
EXTRAS: dict[str, tuple[str, ...]] = {
    "redis": ("redis",),
    "postgres": ("psycopg", "psycopg_pool"),
    "phone": ("phonenumbers",),
    "pskc": ("pskc", "defusedxml"),
    "webpush": ("pywebpush", "http_ece", "py_vapid"),
}


def install_hint(extra: str) -> str:
    return f'pip install "oidc-combinedreg[{extra}]"'


def missing_extra(extra: str) -> str | None:
    """None when the extra is installed, else the problem: what is missing and how to install it."""
    absent = [m for m in EXTRAS[extra] if not _importable(m)]
    if not absent:
        return None
    return f"needs the {extra!r} extra, which is not installed ({install_hint(extra)})"


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent that fails to import, or sys.modules[m] = None
        return False


class MissingExtra(ImportError):
    """An optional dependency a feature needs is not installed; the message says how to add it."""

    def __init__(self, extra: str, feature: str) -> None:
        self.extra = extra
        super().__init__(
            f"{feature} {missing_extra(extra) or 'needs the ' + repr(extra) + ' extra'}"
        )


def require_extra(extra: str, feature: str) -> None:
    """Raise :class:`MissingExtra` (naming ``feature`` and the install command) when absent."""
    if missing_extra(extra) is not None:
        raise MissingExtra(extra, feature)
