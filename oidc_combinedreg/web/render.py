"""Pages as values, rendered as HTML or as their JSON twin (``Accept: application/json``)."""

from __future__ import annotations

import json
from collections import ChainMap
from collections.abc import Iterable, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    Template,
    Undefined,
    select_autoescape,
)
from markupsafe import Markup, escape

from .i18n import (
    BUILTIN,
    Catalogs,
    active_language,
    gettext,
    is_rtl,
    localized_date,
    localized_datetime,
    localized_number,
    ngettext,
    using_language,
)
from .views.common import method_detail

__all__ = ["HostAnswer", "Page", "Redirect", "Renderer", "isolate", "wants_json"]

_TEMPLATES = Path(__file__).parent / "templates"
_csrf: ContextVar[str] = ContextVar("combinedreg_csrf", default="")


def isolate(text: object) -> str:
    """In a right-to-left page, Unicode-isolate a value inside translated text (FSI ... PDI), so a
    masked number such as ``+1 XXXXXXXX67`` keeps its own direction; elsewhere it is unchanged."""
    if not text:
        return ""
    return f"\u2068{text}\u2069" if is_rtl(active_language()) else str(text)


@dataclass(frozen=True, slots=True)
class Page:
    """A page: its name (template ``combinedreg/<name>.html``, and ``"page"`` in the JSON twin)."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Redirect:
    """A 303 to a URL the server built (never a URL taken from the request)."""

    location: str


@dataclass(frozen=True, slots=True)
class HostAnswer:
    """The host's own response (a WSGI application: its error answer to a relying party, from
    ``AuthorizationEndpoint.error_response``), sent on with the page's cookies."""

    app: Any


def wants_json(accept: str | None) -> bool:
    if not accept:
        return False
    best = accept.split(",")[0].split(";")[0].strip().lower()
    return best == "application/json" or (
        "application/json" in accept and "text/html" not in accept
    )


#: at most this many remembered template choices (``_Environment.select_template``)
_SELECTED_MAX = 256


class _Environment(Environment):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._selected: dict[tuple[tuple[str, ...], str | None], Template] = {}

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A template's globals: the environment's own dict when the template adds none (all
        of ours), as Jinja 2 did, not Jinja 3's ``ChainMap`` over it. Each render copies the
        globals into its context and each macro import compares their keys: through a
        ``ChainMap`` that was Python code per name, a tenth of the MFA page's rendering."""
        return self.globals if not d else ChainMap(d, self.globals)

    def select_template(
        self,
        names: Iterable[str | Template] | Undefined,
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,  # noqa: A002 - Jinja's name
    ) -> Template:
        """The first of ``names`` that exists, remembered per list of names: the MFA page
        includes ``mfa_<kind>.html`` or else ``mfa_code.html``, and Jinja caches no miss, so each
        render asked every loader (a ``stat``) and raised two exceptions for the absent one.
        Templates are read once per process anyway (``auto_reload=False``, decision 198)."""
        key = tuple(names) if isinstance(names, list | tuple) and not globals else None
        if key is None or not all(isinstance(name, str) for name in key):
            return super().select_template(names, parent, globals)
        found = self._selected.get((key, parent))
        if found is None:
            found = super().select_template(names, parent, globals)
            if len(self._selected) < _SELECTED_MAX:  # names come from our templates: few
                self._selected[key, parent] = found
        return found


class Renderer:
    def __init__(
        self, extra_template_dirs: tuple[str, ...] = (), catalogs: Catalogs = BUILTIN
    ) -> None:
        #: the languages offered (the footer's list) and their catalogs
        self.catalogs = catalogs
        #: per page language: each language's escaped code and the rest of its footer line
        self._language_tails: dict[str, list[tuple[str, str]]] = {}
        # Host templates come first, so a host overrides any page by name.
        loaders = [FileSystemLoader(d) for d in extra_template_dirs]
        loaders.append(FileSystemLoader(str(_TEMPLATES)))
        self.env = _Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(default=True, default_for_string=True),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
            # Loaded once per process: Jinja's default stats every template of a page (layouts,
            # macros) at each render to see whether it changed (Flask checks only in debug).
            auto_reload=False,
            # Kept in a plain dict: a page asks for its template, base.html, layout.html and its
            # macros at each render, and Jinja's default (an LRU of 400 behind a lock, each hit
            # moving its name in a queue) cost 2-3 us per ask. The templates are a fixed set
            # (ours, the host's template_dirs), so nothing needs evicting.
            cache_size=-1,
        )
        # Globals, not render variables: macros imported without context translate too. They
        # read the page's language (and CSRF token) from context variables set around rendering.
        self.env.install_gettext_callables(gettext, ngettext, newstyle=False)  # type: ignore[attr-defined]
        self.env.globals.update(
            _=gettext,
            current_csrf_token=lambda: _csrf.get(),
            languages=catalogs.names,
            method_detail=method_detail,
            language_items=self._language_items,
        )
        self.env.filters.update(
            date=localized_date,
            datetime=localized_datetime,
            number=localized_number,
            isolate=isolate,
        )

    def _language_items(self, cid: object, part: object, lang: str) -> Markup:
        """The footer's language list, a link per language to this page in it: the lines the
        layout's loop wrote (``<li>`` each, escaped the same), as one piece of text. Jinja's loop
        yielded seven pieces per language through every template level of the page; for the
        MFA page that was a third of its rendering (decision 207)."""
        tails = self._language_tails.get(lang)
        if tails is None:
            tails = []
            for code, label in self.catalogs.names.items():
                current = ' aria-current="true"' if code == lang else ""
                own = escape(code)
                tail = f'" lang="{own}" hreflang="{own}"{current}>{escape(label)}</a></li>'
                tails.append((str(own), tail))
            self._language_tails[lang] = tails
        query = f"c={escape(cid)}&amp;" if cid else ""
        if part and part != "all":
            query += f"part={escape(part)}&amp;"
        return Markup(
            "\n".join(f'      <li><a href="?{query}lng={code}{tail}' for code, tail in tails)
        )

    def html(self, page: Page, common: dict[str, Any], lang: str) -> str:
        template = self.env.get_template(f"combinedreg/{page.name}.html")
        token = _csrf.set(str(common.get("csrf_token") or ""))
        try:
            with using_language(lang, self.catalogs):
                return template.render(
                    **common,
                    **page.data,
                    page=page.name,
                    lang=lang,
                    dir="rtl" if is_rtl(lang) else "ltr",
                )
        finally:
            _csrf.reset(token)

    @staticmethod
    def json(page: Page, common: dict[str, Any]) -> bytes:
        body = {"page": page.name, **{k: v for k, v in page.data.items() if not k.startswith("_")}}
        if "csrf_token" in common:
            body["csrf_token"] = common["csrf_token"]
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
