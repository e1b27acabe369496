"""docs/security-cases.md maps every case of the security checklist to the tests that cover it.

This test keeps the map honest: all 62 cases are there, in order, each names at least one test (or,
for the entry-point cases 57-62 only, says what is pending), and every named ``file::function``
exists as a top-level test function, so renaming or deleting a test without updating the map fails.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "security-cases.md"
CASES = 62
#: the cases being built while this map was written; only they may say "pending:"
MAY_BE_PENDING = frozenset(range(57, 63))

_HEADING = re.compile(r"^### (\d+)\. \S")
_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def _sections() -> dict[int, list[str]]:
    """Case number -> the lines under its heading (up to the next heading of any level)."""
    sections: dict[int, list[str]] = {}
    order: list[int] = []
    current: int | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = _HEADING.match(line)
        if heading:
            current = int(heading.group(1))
            assert current not in sections, f"case {current} appears twice in {DOC.name}"
            sections[current] = []
            order.append(current)
        elif line.startswith("#"):
            current = None
        elif current is not None:
            sections[current].append(line)
    assert order == sorted(order), f"cases out of order in {DOC.name}: {order}"
    return sections


@cache
def _test_functions(path: str) -> frozenset[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=path)
    return frozenset(
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    )


def test_every_case_is_in_the_map_once_and_in_order() -> None:
    assert sorted(_sections()) == list(range(1, CASES + 1))


@pytest.mark.parametrize("case", range(1, CASES + 1))
def test_each_case_names_existing_tests(case: int) -> None:
    lines = _sections().get(case, [])
    references = [ref for line in lines for ref in _REFERENCE.findall(line)]
    pending = [line for line in lines if line.strip().startswith("pending:")]
    if pending:
        assert case in MAY_BE_PENDING, f"case {case} may not be pending: {pending}"
    assert references or pending, f"case {case} names no test"
    missing = []
    for path, name in references:
        if not (ROOT / path).is_file():
            missing.append(f"{path} (no such file)")
        elif name not in _test_functions(path):
            missing.append(f"{path}::{name} (no such test function)")
    assert not missing, f"case {case} names tests that do not exist: {missing}"


def test_a_misspelt_reference_would_be_caught() -> None:
    """The checker itself: a name that is not a test function of its file is reported."""
    assert "test_each_case_names_existing_tests" in _test_functions(
        "tests/test_security_cases_doc.py"
    )
    assert "no_such_test" not in _test_functions("tests/test_security_cases_doc.py")
    assert _REFERENCE.findall("- `tests/web/x.py::test_y` (rows)") == [("tests/web/x.py", "test_y")]
