"""Importing the middleware loads nothing a request may never need (benchmarks/import_time.py
measures the time; this checks the modules, which does not depend on the machine's load)."""

from __future__ import annotations

import json
import subprocess
import sys

#: loaded at the first ceremony, QR code, typed address, phone number, device key or Redis store
DEFERRED = (
    "fido2",
    "cryptography.x509",
    "segno",
    "email_validator",
    "phonenumbers",
    "redis",
    "pskc",
    "cryptography.hazmat.primitives.serialization",
)


def test_importing_the_middleware_defers_what_a_request_may_not_need() -> None:
    code = (
        "import sys, json\n"
        "from oidc_combinedreg import CombinedRegistration, load_config\n"
        f"print(json.dumps(sorted(m for m in {DEFERRED!r} if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
