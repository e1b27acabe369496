"""The package's public face: no web imports, and ``__all__`` tells the truth."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import oidc_combinedreg.conditional_access as ca

BLOCKER = textwrap.dedent(
    """
    import sys

    class NoWeb:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"flask", "werkzeug"}:
                raise ImportError(f"core imported the web framework {name!r}")
            return None

    sys.meta_path.insert(0, NoWeb())
    # The top-level package mounts the middleware (a web layer) in its __init__; a bare stand-in
    # for it lets this check cover the core package and everything *it* imports, and nothing else.
    import importlib.util, types
    spec = importlib.util.find_spec("oidc_combinedreg")
    parent = types.ModuleType("oidc_combinedreg")
    parent.__path__ = list(spec.submodule_search_locations)
    sys.modules["oidc_combinedreg"] = parent
    import oidc_combinedreg.conditional_access as ca
    cfg = ca.parse_conditional_access({})
    ca.Engine(cfg)
    assert not any(m.split(".")[0] in {"flask", "werkzeug"} for m in sys.modules)
    print("ok")
    """
)


def test_core_imports_without_flask_or_werkzeug() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_blocker_would_catch_a_web_import() -> None:
    code = BLOCKER.replace("import oidc_combinedreg.conditional_access as ca", "import werkzeug")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "web framework 'werkzeug'" in done.stderr


def test_all_lists_exactly_the_public_names() -> None:
    public = {n for n in vars(ca) if not n.startswith("_")} - {
        "annotations",
        "client_ip",
        "config",
        "context",
        "decision",
        "engine",
        "lint",
        "locations",
        "model",
        "whatif",
    }
    assert set(ca.__all__) >= {
        "read_conditional_access",
        "ConditionalAccessConfig",
        "Engine",
        "SignInContext",
        "Decision",
        "Target",
        "lint",
        "resolve_client_ip",
        "render_text",
        "render_json",
        "REGISTER_SECURITY_INFO",
        "what_if",
    }
    assert public - {"lint"} <= set(ca.__all__)
    assert all(hasattr(ca, n) for n in ca.__all__)
