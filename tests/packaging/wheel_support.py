"""What the packaging tests and their fixtures share: the source tree, uv, a clean environment."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def uv() -> str:
    path = shutil.which("uv")
    if path is None:
        pytest.fail("uv is not on PATH: `make test` installs it (pip install uv)")
    return path


def clean_env() -> dict[str, str]:
    """The environment without anything that would let a subprocess see this source tree."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env
