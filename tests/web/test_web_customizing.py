"""A host customizes the layout of every page by overriding blocks of ``combinedreg/base.html``
(issue 18.4): one small template in ``[web].template_dirs``, not a copy of the layout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from jinja2 import nodes
from test_web_manage import SECURITY_INFO, enrolled
from webtest import Browser, location

from oidc_combinedreg.web import render
from oidc_combinedreg.web.render import Renderer

HOST_BASE = """{% extends "combinedreg/layout.html" %}
{% block head %}<meta name="host-marker" content="head">{% endblock %}
{% block nav %}<a class="portal" href="https://portal.example/">Back to our portal</a>{% endblock %}
{% block footer_extra %}<p class="host-footer">Contoso IT</p>{% endblock %}
"""
MARKERS = (
    '<meta name="host-marker" content="head">',
    '<a class="portal" href="https://portal.example/">Back to our portal</a>',
    '<p class="host-footer">Contoso IT</p>',
    "Skip to content",  # the built-in layout is still there
    'class="langs"',  # and so is the language list (footer_extra sits before it)
)
_BUILTIN = Path(render.__file__).parent / "templates"


def _host_browser(tmp_path: Path, make_browser: Callable[..., Browser]) -> Browser:
    folder = tmp_path / "host-templates" / "combinedreg"
    folder.mkdir(parents=True)
    (folder / "base.html").write_text(HOST_BASE)
    return make_browser(
        web={"secure_cookies": False, "template_dirs": [str(tmp_path / "host-templates")]}
    )


def _assert_host_blocks(html: str, where: str) -> None:
    for marker in MARKERS:
        assert marker in html, f"{where}: {marker!r} missing"


def test_host_blocks_render_on_the_pages_of_a_sign_in_and_of_manage_mode(
    tmp_path: Path, make_browser: Callable[..., Browser]
) -> None:
    browser = _host_browser(tmp_path, make_browser)
    html = {"Accept": "text/html"}
    _assert_host_blocks(browser.get(SECURITY_INFO, headers=html).get_data(as_text=True), "401")
    _assert_host_blocks(browser.get("/security-info/reset", headers=html).get_data(True), "reset")
    _assert_host_blocks(browser.get("/security-info/nope", headers=html).get_data(True), "404")
    browser.login("alice")
    wizard = location(browser.authorize())
    _assert_host_blocks(browser.get(wizard, headers=html).get_data(as_text=True), "wizard")
    browser.register_totp(wizard)
    browser.post_json(wizard, {"action": "finish", "csrf_token": browser.csrf(wizard)})
    _assert_host_blocks(browser.get(SECURITY_INFO, headers=html).get_data(True), "manage")
    _assert_host_blocks(browser.get("/security-info/add/totp", headers=html).get_data(True), "add")
    browser.clock.advance(120)
    browser.login("alice")
    mfa = location(browser.authorize())
    _assert_host_blocks(browser.get(mfa, headers=html).get_data(as_text=True), "mfa")


def _extends(renderer: Renderer, name: str) -> str | None:
    assert renderer.env.loader is not None
    source = renderer.env.loader.get_source(renderer.env, name)[0]
    node = renderer.env.parse(source).find(nodes.Extends)
    if node is None or not isinstance(node.template, nodes.Const):
        return None
    return str(node.template.value)


def test_every_page_template_extends_base_so_the_host_blocks_reach_it() -> None:
    """Pages are the templates not starting with ``_`` (partials) and not the MFA step's method
    parts (included into mfa.html); each must extend base.html, which extends the layout."""
    renderer = Renderer()
    folder = _BUILTIN / "combinedreg"
    pages = [
        p.name
        for p in folder.glob("*.html")
        if not p.name.startswith("_")
        and p.name not in ("base.html", "layout.html")
        and not (p.name.startswith("mfa_") and _extends(renderer, f"combinedreg/{p.name}") is None)
    ]
    assert len(pages) > 40
    for name in pages:
        assert _extends(renderer, f"combinedreg/{name}") == "combinedreg/base.html", name
    assert _extends(renderer, "combinedreg/base.html") == "combinedreg/layout.html"
    layout = (folder / "layout.html").read_text()
    for block in ("head", "header", "nav", "footer", "footer_extra", "title", "content"):
        assert f"{{% block {block} %}}" in layout, block


def test_the_header_block_replaces_the_whole_top_bar(
    tmp_path: Path, make_browser: Callable[..., Browser]
) -> None:
    folder = tmp_path / "t" / "combinedreg"
    folder.mkdir(parents=True)
    (folder / "base.html").write_text(
        '{% extends "combinedreg/layout.html" %}'
        '{% block header %}<header class="host-top">Contoso</header>{% endblock %}'
        "{% block footer %}{% endblock %}"
    )
    browser = make_browser(web={"secure_cookies": False, "template_dirs": [str(tmp_path / "t")]})
    enrolled(browser)
    page = browser.get(SECURITY_INFO, headers={"Accept": "text/html"}).get_data(as_text=True)
    assert '<header class="host-top">Contoso</header>' in page
    assert 'class="top"' not in page and 'class="langs"' not in page
    assert "<h1>" in page  # the page's content is untouched
