"""The middleware's pages do not ask the file system whether their templates changed (issue
22.5): Jinja's default (auto_reload) stats every template a page uses, its layouts and imported
macros, at every render; the templates of a running process do not change (Flask's own
templates are checked only in debug mode either). A host's templates are read at the first
render, as before."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oidc_combinedreg.web.render import Page, Renderer


def test_a_page_renders_without_asking_whether_its_templates_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renderer = Renderer()
    page = Page("blocked", {"reason": "registration_location", "correlation_id": "c"}, 403)
    first = renderer.html(page, {"csrf_token": "t"}, "en")  # loads and compiles once
    checked: list[str] = []
    getmtime = os.path.getmtime

    def counting(path: str) -> float:
        checked.append(path)
        return getmtime(path)

    monkeypatch.setattr(os.path, "getmtime", counting)
    for _ in range(3):
        assert renderer.html(page, {"csrf_token": "t"}, "en") == first
    assert checked == []  # the old code: every template of the page, at every render


def test_a_hosts_template_is_used(tmp_path: Path) -> None:
    folder = tmp_path / "t" / "combinedreg"
    folder.mkdir(parents=True)
    (folder / "blocked.html").write_text("host page {{ reason }}")
    renderer = Renderer((str(tmp_path / "t"),))
    page = Page("blocked", {"reason": "x", "correlation_id": "c"}, 403)
    assert renderer.html(page, {}, "en") == "host page x"
