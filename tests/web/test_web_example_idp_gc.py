"""The example IdP's WSGI entry (example_idp/wsgi.py, what gunicorn imports) moves what it loaded
out of the cyclic collector's generations (``settle_loaded_objects``, issue 22): a full
collection then walks a request's objects, not the whole application. Run in a process of its
own: the freeze is the process's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc, json
import example_idp.wsgi as entry
frozen, walked = gc.get_freeze_count(), len(gc.get_objects())
client = entry.app.test_client()
statuses = [client.get(path).status_code for path in ("/", "/login", "/.well-known/openid-configuration")]

class Node:
    pass

def cycle():  # garbage only the cyclic collector frees, made after the freeze
    a, b = Node(), Node()
    a.other, b.other = b, a

for _ in range(100):
    cycle()
collected = gc.collect()
print(json.dumps({"frozen": frozen, "walked": walked, "statuses": statuses,
                  "collected": collected}))
"""


def _probe(tmp_path: Path) -> dict[str, object]:
    env = {**os.environ, "EXAMPLE_IDP_INSTANCE": str(tmp_path / "instance"),
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_wsgi_entry_freezes_what_it_loaded_and_still_collects_garbage(
    tmp_path: Path,
) -> None:
    got = _probe(tmp_path)
    frozen, walked = got["frozen"], got["walked"]
    assert isinstance(frozen, int) and isinstance(walked, int)
    # The application's objects (Flask, Authlib, the middleware, templates) are frozen: tens of
    # thousands; what the collector still tracks is what was made after (a few hundred).
    assert frozen > 20_000, got
    assert walked < frozen / 20, got
    assert got["statuses"] == [200, 200, 200], got
    # Cycles made after the freeze are still found and freed (200 objects and their dicts).
    collected = got["collected"]
    assert isinstance(collected, int) and collected >= 200, got
