"""The demo's commented ``web_app_origin`` line (example_idp/combinedreg.toml), turned on: the
example IdP at ``http://localhost:5000`` serves the app at ``http://127.0.0.1:5000`` and nothing
of itself there (docs/example-idp.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

from example_idp import create_app

EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"
LINE = '# web_app_origin = "http://127.0.0.1:5000"'


def test_the_demo_line_gives_the_app_its_own_origin(tmp_path: Path) -> None:
    config = Path(shutil.copy(EXAMPLE_IDP / "combinedreg.toml", tmp_path / "combinedreg.toml"))
    text = config.read_text()
    assert text.count(LINE) == 1
    config.write_text(text.replace(LINE, LINE[2:]))
    app = create_app(
        instance_path=tmp_path / "instance",
        issuer="http://localhost:5000",
        combinedreg_config=config,
    )
    with app.test_client() as client:
        moved = client.get("/security-info/app/", base_url="http://localhost:5000")
        assert moved.status_code == 308
        assert moved.headers["Location"] == "http://127.0.0.1:5000/security-info/app/"
        assert client.get("/login", base_url="http://localhost:5000").status_code == 200
        shell = client.get("/security-info/app/", base_url="http://127.0.0.1:5000")
        assert shell.status_code == 200 and b"app.js" in shell.data
        for path in ("/login", "/.well-known/openid-configuration", "/security-info/"):
            r = client.get(path, base_url="http://127.0.0.1:5000")
            assert r.status_code == 404, path
            assert "Set-Cookie" not in r.headers, path
