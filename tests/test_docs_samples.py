"""The docs' Python samples run (issue 18: "the docs' code samples are executed by the suite").

Every fenced ```python block of README.md and docs/ (docs/methods/ too) runs: a page's blocks in
order, in one namespace, in a subprocess whose working directory is a temp dir. So a sample that
calls the constructor without ``authorization=``, imports a name that moved or passes a keyword
that no longer exists fails here, naming the page and line.

Samples are written for a host, so the namespace starts with the host's names the docs use,
standing in for the reader's own (the plain host's classes, ``examples/plain_wsgi_host.py``):
``app`` (a Flask app), ``config`` (loaded from ``combinedreg.toml`` in the working directory),
``MyDirectory``/``directory``, ``MyAuthorizationEndpoint``/``endpoint``, ``environ`` (a request to
``/authorize``) and ``user`` (a ``DirectoryUser``). Anything else a sample needs, it defines.

A block that is a fragment by nature (a view's body with ``return``, ``...`` placeholders, a
server of the reader's) is marked by a ``<!-- not-run: reason -->`` line right before its fence;
it is still compiled (as a function body), so its syntax is checked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "docs").glob("*/*.md")])
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(?P<reason>\S.*?)\s*-->")
#: the most not-run blocks the docs may have: most samples should run (raise it with care)
MAX_NOT_RUN = 20


@dataclass(frozen=True)
class Sample:
    page: str  # relative to the repository, e.g. "docs/integration.md"
    line: int  # the line of the opening fence (1-based)
    code: str
    not_run: str | None  # the reason, for a marked fragment


def samples(path: Path) -> list[Sample]:
    """The ```python blocks of a page, with their not-run markers."""
    lines = path.read_text(encoding="utf-8").split("\n")
    page = path.relative_to(ROOT).as_posix()
    found: list[Sample] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            end = next(
                (j for j in range(i + 1, len(lines)) if lines[j].strip().startswith("```")), None
            )
            assert end is not None, f"{page}:{i + 1}: a ```python block that never closes"
            before = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
            marker = NOT_RUN.fullmatch(before.strip())
            code = "\n".join(lines[i + 1 : end])
            found.append(Sample(page, i + 1, code, marker["reason"] if marker else None))
            i = end
        i += 1
    return found


PAGES_WITH_SAMPLES = [page for page in PAGES if samples(page)]

# Runs in the subprocess: the host's names, then each block (filename "page:line" in tracebacks).
RUNNER = r'''
import json, sys
from pathlib import Path

Path("combinedreg.toml").write_text("""
[general]
organization = "Docs"
environment = "development"
[web]
secure_cookies = false
login_url = "/login"
[storage.sqlite]
path = "combinedreg.sqlite3"
[secrets]
key_file = "combinedreg.keys"
generate_missing = true
""")

from flask import Flask
from plain_wsgi_host import DictDirectory, Host
from werkzeug.test import EnvironBuilder

from oidc_combinedreg import load_config

host = {
    "__name__": "__docs__",
    "app": Flask("docs"),
    "config": load_config("combinedreg.toml"),
    "MyDirectory": DictDirectory,
    "directory": DictDirectory(),
    "MyAuthorizationEndpoint": Host,
    "endpoint": Host(),
    "environ": EnvironBuilder(
        path="/authorize", query_string="client_id=demo",
        environ_base={"REMOTE_ADDR": "192.0.2.10"}).get_environ(),
}
host["user"] = host["directory"].get_user("alice")
for block in json.load(sys.stdin):
    exec(compile(block["code"], f"{block['page']}:{block['line']}", "exec"), host)
'''


@pytest.mark.parametrize("page", PAGES_WITH_SAMPLES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_samples_run(page: Path, tmp_path: Path) -> None:
    blocks = samples(page)
    for block in blocks:
        if block.not_run is not None:  # still valid Python, as the body of a function
            body = "".join(f"    {line}\n" for line in block.code.split("\n"))
            try:
                compile(f"def _fragment():\n{body}    pass\n", f"{block.page}:{block.line}", "exec")
            except SyntaxError as error:
                pytest.fail(f"{block.page}:{block.line}: not valid Python: {error}")
    runnable = [vars(block) for block in blocks if block.not_run is None]
    if not runnable:
        return
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "examples")]),
    }
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", RUNNER],
        input=json.dumps(runnable),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"a sample of {page.relative_to(ROOT)} failed (the traceback names page:line; mark a "
        f"fragment with <!-- not-run: reason -->):\n{result.stderr[-3000:]}"
    )


def test_not_run_markers_stand_before_samples_and_stay_few() -> None:
    marked = 0
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").split("\n")
        markers = sum(1 for line in lines if NOT_RUN.fullmatch(line.strip()))  # alone on a line
        marked_here = sum(1 for sample in samples(page) if sample.not_run is not None)
        assert markers == marked_here, (
            f"{page.relative_to(ROOT)}: a not-run marker not before a ```python block"
        )
        marked += marked_here
    assert marked <= MAX_NOT_RUN, f"{marked} samples are not run: fix samples rather than mark them"


def test_toml_samples_are_toml() -> None:
    """Config samples (```toml) parse: each is a part of a config, valid TOML on its own."""
    import tomllib

    problems = []
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").split("\n")
        starts = [i for i, line in enumerate(lines) if line.strip() == "```toml"]
        for start in starts:
            end = next(j for j in range(start + 1, len(lines)) if lines[j].startswith("```"))
            try:
                tomllib.loads("\n".join(lines[start + 1 : end]))
            except tomllib.TOMLDecodeError as error:
                problems.append(f"{page.relative_to(ROOT)}:{start + 1}: {error}")
    assert not problems, "\n".join(problems)
