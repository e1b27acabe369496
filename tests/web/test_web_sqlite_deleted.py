"""The SQLite file deleted while the IdP runs: the next sign-in step answers 503 (the store's
page, ``Retry-After``) with a log line naming the cause, and nothing is written anywhere."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from webtest import Browser


def test_a_deleted_database_is_a_503_and_a_log_line(
    browser: Browser, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert browser.login("alice").status_code == 303  # the session is in the file
    database = tmp_path / "reg.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    with caplog.at_level(logging.ERROR):
        page = browser.get("/authorize?client_id=demo&state=s1")
    assert page.status_code == 503 and page.headers["Retry-After"] == "30"
    assert "code=" not in page.headers.get("Location", "")
    logged = [r.getMessage() for r in caplog.records]
    assert any("deleted or replaced" in m for m in logged), logged
    assert not database.exists()
