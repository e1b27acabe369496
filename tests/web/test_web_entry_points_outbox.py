"""The demo's development outbox (``/outbox``, example_idp/outbox.py) as an anonymous entry point.

It shows every code the demo sends, reset codes included: whoever reads it can reset any demo
user's password. So it is shown only to this machine (a loopback caller), also when the demo
listens on every address (``--host 0.0.0.0``); and what it keeps is bounded (docs/security.md)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from example_idp import outbox as outbox_module
from example_idp.outbox import EXTENSION, KEEP, Outbox, create_demo_app

EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Flask]:
    config = shutil.copy(EXAMPLE_IDP / "combinedreg.toml", tmp_path / "combinedreg.toml")
    app = create_demo_app(instance_path=tmp_path / "instance", combinedreg_config=config)
    try:
        yield app
    finally:
        app.extensions[EXTENSION + "_smtp"].stop()


@pytest.mark.parametrize("ip", ["203.0.113.66", "10.0.0.7", "::ffff:192.0.2.1"])
def test_a_caller_from_another_machine_reads_no_code(demo: Flask, ip: str) -> None:
    outbox: Outbox = demo.extensions[EXTENSION]
    outbox.add("sms", "+14155550123", "", "Your reset code is 482913", "482913")
    r = demo.test_client().get("/outbox", environ_base={"REMOTE_ADDR": ip})
    assert r.status_code == 403
    assert "482913" not in r.get_data(as_text=True)


@pytest.mark.parametrize("ip", ["127.0.0.1", "::1"])
def test_this_machine_reads_the_outbox(demo: Flask, ip: str) -> None:
    outbox: Outbox = demo.extensions[EXTENSION]
    outbox.add("sms", "+14155550123", "", "Your reset code is 482913", "482913")
    r = demo.test_client().get("/outbox", environ_base={"REMOTE_ADDR": ip})
    assert r.status_code == 200 and "482913" in r.get_data(as_text=True)


def test_the_outbox_keeps_only_its_newest_messages(
    demo: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert KEEP == 1000
    monkeypatch.setattr(outbox_module, "KEEP", 20)  # the same rule, fewer messages to write
    outbox: Outbox = demo.extensions[EXTENSION]
    for n in range(25):
        outbox.add("email", "alice@example.test", f"Message {n}", "text")
    kept = outbox.messages(limit=1000)
    assert len(kept) == 20
    assert kept[0].subject == "Message 24" and kept[-1].subject == "Message 5"
