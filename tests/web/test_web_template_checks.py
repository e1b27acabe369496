"""The middleware's pages do not ask the file system whether their templates changed (issue
22.5): Jinja's default (auto_reload) stats every template a page uses, its layouts and imported
macros, at every render; the templates of a running process do not change (Flask's own
templates are checked only in debug mode either). A host's templates are read at the first
render, as before."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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


def test_a_page_does_not_rebuild_its_macros_at_each_render(monkeypatch: pytest.MonkeyPatch) -> None:
    """The middleware's pages import their macros without context (decision 200): Jinja builds
    an imported macros module once per process instead of once per import and render (the old
    ``with context`` imports: at every render of a wizard's code step)."""
    from jinja2 import Template

    renderer = Renderer()
    progress = {"current": 1, "total": 2, "kind": "totp", "name": "x", "purpose": "mfa"}
    pages = [
        Page(
            "totp_verify",
            {
                "stage": "verify",
                "errors": {},
                "values": {},
                "progress": progress,
                "can_choose_other": True,
                "skips_left": 1,
            },
        ),  # fmt: skip
    ]
    for page in pages:
        renderer.html(page, {"csrf_token": "t", "cid": "c1"}, "en")  # compiles, builds once
    built: list[str] = []
    make_module = Template.make_module

    def counting(self: Template, *args: Any, **kwargs: Any) -> Any:
        built.append(str(self.name))
        return make_module(self, *args, **kwargs)

    monkeypatch.setattr(Template, "make_module", counting)
    for page in pages:
        renderer.html(page, {"csrf_token": "t", "cid": "c1"}, "en")
    assert built == []


def test_other_method_imported_with_context_still_reads_the_skip_state(tmp_path: Path) -> None:
    """A host's template may still import ``other_method`` with context (its signature kept)."""
    folder = tmp_path / "t" / "combinedreg"
    folder.mkdir(parents=True)
    (folder / "blocked.html").write_text(
        '{% from "combinedreg/_macros.html" import other_method with context %}'
        "{{ other_method(progress, True, 'c1') }}"
    )
    renderer = Renderer((str(tmp_path / "t"),))
    page = Page("blocked", {"progress": {"current": 1}, "skips_left": 2}, 403)
    html = renderer.html(page, {"csrf_token": "t"}, "en")
    assert "choose=1" in html and 'value="skip"' in html and "2 more times" in html


def test_the_pages_read_their_globals_from_one_dict() -> None:
    """Jinja 3 wraps each template's globals in a ``ChainMap`` over the environment's, and each
    render copies them name by name and each macro import compares their keys through it: a
    tenth of the MFA page. The middleware's templates add no globals of their own, so they use
    the environment's dict (as Jinja 2 did); a template given its own still overlays them
    without changing the environment's."""
    renderer = Renderer()
    template = renderer.env.get_template("combinedreg/mfa.html")
    assert template.globals is renderer.env.globals
    own = renderer.env.from_string("{{ x }} {{ _('Code') }}", globals={"x": "own"})
    assert own.render() == "own Code"
    assert "x" not in renderer.env.globals


def test_a_date_is_formatted_once_per_day_and_language(monkeypatch: pytest.MonkeyPatch) -> None:
    """A method's "added" date is on the MFA page twice at every render; Babel looks its locale
    and pattern up each time (about 15 us). The text of a day in a language is kept."""
    from oidc_combinedreg.web import i18n

    formatted: list[object] = []
    format_date = i18n.format_date

    def counting(*args: Any, **kwargs: Any) -> str:
        formatted.append(args[0])
        return format_date(*args, **kwargs)

    monkeypatch.setattr(i18n, "format_date", counting)
    when = 1_234_567_890.5  # a day no other test formats
    with i18n.using_language("de"):
        first = [i18n.localized_date(when), i18n.localized_date(when + 60)]
    with i18n.using_language("en"):
        english = i18n.localized_date(when)
    assert first == ["13.02.2009", "13.02.2009"] and english == "Feb 13, 2009"
    assert len(formatted) == 2  # one per language


def _mfa_page() -> Page:
    method = {"id": "m1", "kind": "totp", "name": "Authenticator app", "label": "",
              "created_at": 1_700_000_000.0, "ordinal": 0}  # fmt: skip
    return Page("mfa", {"method": method, "others": [], "needs_start": False, "started": False,
                        "challenge": {}, "push_result": None, "errors": {}, "values": {},
                        "cancel_url": None, "back": None})  # fmt: skip


def test_a_page_including_the_first_template_that_exists_looks_it_up_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The MFA page includes ``mfa_<kind>.html`` or else ``mfa_code.html``; Jinja remembers no
    template that is absent, so each render asked the loaders again (a ``stat`` per folder and
    two exceptions). The choice is made once per process; a host's own ``mfa_totp.html`` is
    still the one chosen."""
    from jinja2 import FileSystemLoader

    renderer = Renderer()
    first = renderer.html(_mfa_page(), {"csrf_token": "t"}, "en")
    asked: list[str] = []
    get_source = FileSystemLoader.get_source

    def counting(self: FileSystemLoader, environment: Any, template: str) -> Any:
        asked.append(template)
        return get_source(self, environment, template)

    monkeypatch.setattr(FileSystemLoader, "get_source", counting)
    assert renderer.html(_mfa_page(), {"csrf_token": "t"}, "en") == first
    assert asked == []
    folder = tmp_path / "t" / "combinedreg"
    folder.mkdir(parents=True)
    (folder / "mfa_totp.html").write_text("host's own totp form")
    host = Renderer((str(tmp_path / "t"),))
    assert "host's own totp form" in host.html(_mfa_page(), {"csrf_token": "t"}, "en")
    assert "host's own totp form" in host.html(_mfa_page(), {"csrf_token": "t"}, "en")


def test_the_footer_lists_the_languages_in_one_piece() -> None:
    """The footer's language links were a loop in the layout: seven pieces per language, each
    passed up through every template level of the page (a third of the MFA page's rendering,
    decision 207). They are one piece now, with the same text: the page's own continuation
    and part kept, escaped, the current language marked."""
    from oidc_combinedreg.web.i18n import using_language

    renderer = Renderer()
    template = renderer.env.get_template("combinedreg/blocked.html")
    data = {"reason": "x", "correlation_id": "c", "lang": "de", "dir": "ltr", "page": "blocked"}
    with using_language("de"):
        pieces = list(template.generate(**data, cid='c"1&', part="signins"))
    assert len(pieces) < 60, len(pieces)  # the old loop: 123 with the 6 built-in languages
    page = "".join(pieces)
    for code in renderer.catalogs.names:
        link = f'<a href="?c=c&#34;1&amp;&amp;part=signins&amp;lng={code}" lang="{code}"'
        assert link in page, code
    assert 'hreflang="de" aria-current="true">Deutsch</a></li>\n' in page
    assert page.count("aria-current") == 1


def test_loaded_templates_are_kept_without_an_lru() -> None:
    """A page asks the environment for its template, base.html, layout.html and its macros at
    each render; Jinja's default cache (an LRU of 400 behind a lock, a hit moving its name in
    a queue) cost 2-3 us per ask. The templates are a fixed set, so a plain dict keeps them."""
    renderer = Renderer()
    renderer.html(_mfa_page(), {"csrf_token": "t"}, "en")
    assert type(renderer.env.cache) is dict
    assert "combinedreg/layout.html" in {name for _, name in renderer.env.cache}
