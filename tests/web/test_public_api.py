"""The public API (issue 18.4): every documented module's ``__all__`` is exactly its table in
docs/python-api.md, each name imports, and every attribute of the middleware object is said to be
public or internal there (a new one fails here until the docs decide)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from webtest import Browser

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"
_SECTION = re.compile(r"^##+ (.+)$", re.M)
_ROW = re.compile(r"^\| `([A-Za-z_][A-Za-z0-9_]*)` \|", re.M)


def _sections() -> dict[str, set[str]]:
    text = DOC.read_text()
    marks = list(_SECTION.finditer(text))
    out: dict[str, set[str]] = {}
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out[mark.group(1).strip()] = set(_ROW.findall(text[mark.end() : end]))
    return out


MODULES = [
    "oidc_combinedreg",
    "oidc_combinedreg.testing",
    "oidc_combinedreg.delivery",
    "oidc_combinedreg.store",
    "oidc_combinedreg.clock",
    "oidc_combinedreg.authorization",
    "oidc_combinedreg.step_up",
    "oidc_combinedreg.integrations.flask",
    "oidc_combinedreg.integrations.authlib",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_the_documented_table_and_imports(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), f"{name}.__all__ lists a name twice"
    documented = _sections().get(f"`{name}`")
    assert documented is not None, f"docs/python-api.md has no section `{name}`"
    assert set(exported) == documented, (
        f"{name}: in __all__ only {sorted(set(exported) - documented)}, "
        f"in the docs only {sorted(documented - set(exported))}"
    )
    for attr in exported:
        assert getattr(module, attr) is not None, f"{name}.{attr}"


def test_the_test_helpers_are_the_ones_the_package_uses() -> None:
    from oidc_combinedreg import clock, delivery, store, testing

    assert testing.FrozenClock is clock.FrozenClock
    assert testing.RecordingSender is delivery.RecordingSender
    assert testing.MemoryStore is store.MemoryStore


def test_every_attribute_of_the_middleware_is_public_or_internal(browser: Browser) -> None:
    sections = _sections()
    public, internal = (
        sections["Public attributes"],
        sections["Internal (may change without notice)"],
    )
    assert not public & internal
    reg = browser.reg
    names = {n for n in dir(reg) if not n.startswith("_")}
    undocumented = names - public - internal
    assert not undocumented, f"say in docs/python-api.md whether these are public: {undocumented}"
    assert public <= names and internal <= names, (public | internal) - names
