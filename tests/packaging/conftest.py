"""The wheel and sdist built from this tree, and a fresh virtualenv with the wheel and no extras.

Both are built once per test session with uv (``make test`` installs it). uv works from its cache
first (``--offline``: a machine that has run ``make`` once needs no network), and asks the index
only when the cache lacks something.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from wheel_support import ROOT, clean_env, uv


def _uv(args: Sequence[str], cwd: Path) -> None:
    """``uv ARGS --offline``, then without --offline when the cache could not serve it."""
    for extra in (["--offline"], []):
        done = subprocess.run(
            [uv(), *args, *extra], cwd=cwd, env=clean_env(), capture_output=True, text=True
        )
        if done.returncode == 0:
            return
    raise AssertionError(f"uv {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the sdist and the wheel of this tree."""
    out = tmp_path_factory.mktemp("dist")
    _uv(["build", "-q", "--sdist", "--wheel", "-o", str(out), str(ROOT)], cwd=out)
    return out


@pytest.fixture(scope="session")
def wheel(dist: Path) -> Path:
    [path] = dist.glob("oidc_combinedreg-*.whl")
    return path


@pytest.fixture(scope="session")
def sdist(dist: Path) -> Path:
    [path] = dist.glob("oidc_combinedreg-*.tar.gz")
    return path


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A new virtualenv (the test interpreter's Python) with the wheel and no extras; its python."""
    where = tmp_path_factory.mktemp("venv")
    venv = where / "venv"
    # The suite's own Python version (uv finds its base interpreter), nothing of its packages.
    _uv(["venv", "-q", "-p", sys.executable, str(venv)], cwd=where)
    _uv(["pip", "install", "-q", "-p", str(venv / "bin" / "python"), str(wheel)], cwd=where)
    return venv / "bin" / "python"


@pytest.fixture(scope="session")
def example_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A new virtualenv with ``oidc-combinedreg[example]`` from the wheel; its python."""
    where = tmp_path_factory.mktemp("example-venv")
    venv = where / "venv"
    _uv(["venv", "-q", "-p", sys.executable, str(venv)], cwd=where)
    python = str(venv / "bin" / "python")
    _uv(["pip", "install", "-q", "-p", python, f"{wheel}[example]"], cwd=where)
    return venv / "bin" / "python"
