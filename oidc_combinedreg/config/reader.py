"""A small reader that turns a parsed TOML table into typed values and collects path-named problems.

Written by hand (not a schema library) because every error must name its exact path and what was
expected there, all errors must be reported at once, and unknown keys must be errors: each section's
``from_dict``-style function reads its keys through a :class:`Reader` and calls :meth:`Reader.done`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from ..exceptions import ConfigError, ConfigProblem

__all__ = ["MISSING", "Reader"]

E = TypeVar("E", bound=enum.Enum)


class _Missing(enum.Enum):
    MISSING = "MISSING"


#: sentinel: the key is required
MISSING = _Missing.MISSING


def _type_name(value: object) -> str:
    names = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "an array",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


class Reader:
    """Reads one table of the config. Problems go to a list shared by the whole file."""

    def __init__(
        self,
        data: object,
        path: str = "",
        problems: list[ConfigProblem] | None = None,
    ) -> None:
        self.path = path
        self.problems: list[ConfigProblem] = [] if problems is None else problems
        self._seen: set[str] = set()
        if isinstance(data, Mapping):
            self._data: Mapping[str, Any] = data
        else:
            self._data = {}
            self.problems.append(ConfigProblem(path, f"expected a table, got {_type_name(data)}"))

    # -- paths and problems -------------------------------------------------------------------

    def key_path(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str | int | None, message: str) -> None:
        path = self.path if key is None else self.key_path(key)
        self.problems.append(ConfigProblem(path, message))

    def warn(self, key: str | int | None, message: str) -> None:
        path = self.path if key is None else self.key_path(key)
        self.problems.append(ConfigProblem(path, message, severity="warning"))

    def has(self, key: str) -> bool:
        return key in self._data

    def raw(self, key: str, default: Any = None) -> Any:
        self._seen.add(key)
        return self._data.get(key, default)

    def _get(self, key: str, default: Any, expected: str) -> tuple[bool, Any]:
        """(found, value); reports a missing required key."""
        self._seen.add(key)
        if key in self._data:
            return True, self._data[key]
        if default is MISSING:
            self.error(key, f"required: expected {expected}")
        return False, default

    # -- scalars ------------------------------------------------------------------------------

    def string(
        self,
        key: str,
        default: str | _Missing = MISSING,
        *,
        choices: Sequence[str] | None = None,
        non_empty: bool = False,
    ) -> str:
        expected = (
            "a string" if choices is None else "one of " + ", ".join(repr(c) for c in choices)
        )
        found, value = self._get(key, default, expected)
        if not found:
            return value if isinstance(value, str) else ""
        if not isinstance(value, str):
            self.error(key, f"expected {expected}, got {_type_name(value)}")
            return default if isinstance(default, str) else ""
        if choices is not None and value not in choices:
            self.error(key, f"expected {expected}, got {value!r}")
            return default if isinstance(default, str) else choices[0]
        if non_empty and not value.strip():
            self.error(key, "expected a non-empty string")
        return value

    def integer(
        self,
        key: str,
        default: int | _Missing = MISSING,
        *,
        min: int | None = None,
        max: int | None = None,
    ) -> int:
        bounds = ""
        if min is not None and max is not None:
            bounds = f" from {min} to {max}"
        elif min is not None:
            bounds = f" of at least {min}"
        elif max is not None:
            bounds = f" of at most {max}"
        expected = f"an integer{bounds}"
        found, value = self._get(key, default, expected)
        fallback = default if isinstance(default, int) else (min or 0)
        if not found:
            return fallback
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(key, f"expected {expected}, got {_type_name(value)}")
            return fallback
        if (min is not None and value < min) or (max is not None and value > max):
            self.error(key, f"expected {expected}, got {value}")
            return fallback
        return value

    def boolean(self, key: str, default: bool | _Missing = MISSING) -> bool:
        found, value = self._get(key, default, "a boolean (true or false)")
        if not found:
            return bool(value) if isinstance(value, bool) else False
        if not isinstance(value, bool):
            self.error(key, f"expected a boolean (true or false), got {_type_name(value)}")
            return default if isinstance(default, bool) else False
        return value

    def choice(self, key: str, enum_cls: type[E], default: E | _Missing = MISSING) -> E:
        choices = [str(m.value) for m in enum_cls]
        raw_default: str | _Missing = MISSING if default is MISSING else str(default.value)
        value = self.string(key, raw_default, choices=choices)
        try:
            return enum_cls(value)
        except ValueError:
            return default if not isinstance(default, _Missing) else next(iter(enum_cls))

    def str_list(
        self, key: str, default: Sequence[str] | _Missing = (), *, non_empty: bool = False
    ) -> tuple[str, ...]:
        found, value = self._get(key, default, "an array of strings")
        if not found:
            return tuple(value) if not isinstance(value, _Missing) else ()
        if not isinstance(value, list):
            self.error(key, f"expected an array of strings, got {_type_name(value)}")
            return ()
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.error(key, f"[{i}]: expected a string, got {_type_name(item)}")
            else:
                out.append(item)
        if non_empty and not value:
            self.error(key, "expected at least one entry")
        return tuple(out)

    # -- nested tables ------------------------------------------------------------------------

    def section(self, key: str, *, required: bool = False) -> Reader:
        """The sub-table ``key`` (an empty reader when absent and not required)."""
        self._seen.add(key)
        if key not in self._data:
            if required:
                self.error(key, "required: expected a table")
            return Reader({}, self.key_path(key), self.problems)
        return Reader(self._data[key], self.key_path(key), self.problems)

    def sections(self, key: str) -> list[Reader]:
        """An array of tables (``[[key]]``), one reader each with an indexed path."""
        self._seen.add(key)
        value = self._data.get(key, [])
        if not isinstance(value, list):
            self.error(key, f"expected an array of tables, got {_type_name(value)}")
            return []
        base = self.key_path(key)
        return [Reader(item, f"{base}[{i}]", self.problems) for i, item in enumerate(value)]

    def table_items(self) -> list[tuple[str, Any]]:
        """Every key of this table, for free-form maps (e.g. ``clients``): marks them all seen."""
        self._seen.update(self._data)
        return list(self._data.items())

    def done(self) -> None:
        """Report every key of this table that no reader asked for."""
        for key in self._data:
            if key not in self._seen:
                self.error(key, "unknown key")

    # -- the end ------------------------------------------------------------------------------

    def errors(self) -> list[ConfigProblem]:
        return [p for p in self.problems if p.severity == "error"]

    def raise_if_errors(self) -> None:
        errors = self.errors()
        if errors:
            raise ConfigError(errors)
