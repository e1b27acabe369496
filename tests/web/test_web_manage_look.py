"""The host's look: template overrides, logo and brand colour from config (validated), the CSP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from test_web_manage import SECURITY_INFO, enrolled
from webtest import Browser, base_config

from oidc_combinedreg import parse_config
from oidc_combinedreg.exceptions import ConfigError
from oidc_combinedreg.web.branding import contrast_ratio


@pytest.mark.parametrize(
    ("branding", "error"),
    [
        pytest.param({"primary_color": "#12ab34"}, None, id="six-digit hex colour -> fine"),
        pytest.param({"primary_color": "#1a4"}, None, id="three-digit hex colour -> fine"),
        pytest.param({"primary_color": "red"}, "web.branding.primary_color", id="a name -> error"),
        pytest.param(
            {"primary_color": "#12ab3"}, "web.branding.primary_color", id="five digits -> error"
        ),
        pytest.param(
            {"primary_color": "#12ab34;x"}, "web.branding.primary_color", id="css injection"
        ),
        pytest.param({"logo_url": "/static/logo.svg"}, None, id="same-origin logo -> fine"),
        pytest.param({"logo_url": "https://cdn.example.test/l.svg"}, None, id="https logo"),
        pytest.param({"logo_url": "http://x.test/l.svg"}, "web.branding.logo_url", id="http logo"),
        pytest.param({"logo_url": "//x.test/l.svg"}, "web.branding.logo_url", id="protocol-rel"),
        pytest.param({"logo_url": "javascript:alert(1)"}, "web.branding.logo_url", id="script"),
        pytest.param({"colour": "#fff"}, "web.branding.colour", id="unknown key -> error"),
    ],
)
def test_branding_is_validated(tmp_path: Path, branding: dict[str, str], error: str | None) -> None:
    data = base_config(tmp_path, web={"secure_cookies": False, "branding": branding})
    if error is None:
        parse_config(data)
        return
    with pytest.raises(ConfigError) as raised:
        parse_config(data)
    assert error in str(raised.value)


def test_template_dirs_must_exist(tmp_path: Path) -> None:
    data = base_config(tmp_path, web={"secure_cookies": False, "template_dirs": ["nope"]})
    with pytest.raises(ConfigError, match="web.template_dirs"):
        parse_config(data)


def test_brand_colour_and_logo_reach_the_pages(make_browser: Callable[..., Browser]) -> None:
    browser = make_browser(
        web={
            "secure_cookies": False,
            "branding": {"primary_color": "#FFD700", "logo_url": "https://cdn.example.test/l.svg"},
        }
    )
    enrolled(browser)
    response = browser.get(SECURITY_INFO)
    html = response.get_data(as_text=True)
    assert '<img class="logo" src="https://cdn.example.test/l.svg" alt="Test Org">' in html
    assert '/security-info/static/brand.css"' in html
    assert (
        "img-src 'self' data: https://cdn.example.test;"
        in response.headers["Content-Security-Policy"]
    )
    css = browser.get("/security-info/static/brand.css")
    assert css.mimetype == "text/css"
    text = css.get_data(as_text=True)
    # Gold is light: text on it is dark, and links (on white) keep the readable ink colour.
    assert "--brand: #ffd700; --brand-ink: #111111; --link: var(--ink);" in text


def test_without_branding_no_brand_stylesheet_is_linked(browser: Browser) -> None:
    enrolled(browser)
    assert "brand.css" not in browser.get(SECURITY_INFO).get_data(as_text=True)
    assert "img-src 'self' data:;" in browser.get(SECURITY_INFO).headers["Content-Security-Policy"]


def test_a_host_template_overrides_a_page_by_name(
    tmp_path: Path, make_browser: Callable[..., Browser]
) -> None:
    folder = tmp_path / "host-templates" / "combinedreg"
    folder.mkdir(parents=True)
    (folder / "manage.html").write_text(
        '{% extends "combinedreg/base.html" %}{% block content %}<h1>Host page</h1>'
        "{% for m in methods %}<p>{{ _(m.name) }}</p>{% endfor %}{% endblock %}"
    )
    browser = make_browser(
        web={"secure_cookies": False, "template_dirs": [str(tmp_path / "host-templates")]}
    )
    enrolled(browser)
    html = browser.get(SECURITY_INFO).get_data(as_text=True)
    assert "<h1>Host page</h1>" in html and "<p>Authenticator app</p>" in html
    assert "Skip to content" in html  # the built-in base still wraps it


@pytest.mark.parametrize(
    ("a", "b", "ratio"),
    [
        pytest.param("#000000", "#ffffff", 21.0, id="black on white is 21:1"),
        pytest.param("#0f5bb5", "#ffffff", 6.6, id="the built-in blue passes AA"),
        pytest.param("#fff", "#ffffff", 1.0, id="short and long hex are the same colour"),
    ],
)
def test_contrast_ratio_follows_wcag(a: str, b: str, ratio: float) -> None:
    assert contrast_ratio(a, b) == pytest.approx(ratio, abs=0.05)
