"""The admin API against its own OpenAPI 3.1 document, with schemathesis (in process, over WSGI).

Every operation gets generated requests, valid and invalid, with a good token: no response may be
a 5xx (other than the documented 501), and every response must match the document (status,
content type, body schema, headers).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from admin_helpers import API, OPS_TOKEN, admin_section, api, fast_taps
from hypothesis import HealthCheck, given, settings
from webtest import Browser

from oidc_combinedreg.admin.openapi import openapi_document


@pytest.fixture
def admin_app(make_browser: Callable[..., Browser]) -> Browser:
    return fast_taps(make_browser(admin=admin_section()))


def test_the_document_is_openapi_3_1_and_served_by_the_middleware(admin_app: Browser) -> None:
    r = api(admin_app, "GET", "/openapi.json", token=None)
    doc = r.get_json()
    assert r.status_code == 200 and doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": API}]
    assert doc == openapi_document(API, admin_app.reg.config.admin)
    operations = {
        op["operationId"]
        for path in doc["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert len(operations) == 15


def test_schemathesis_finds_no_server_error_and_no_schema_violation(admin_app: Browser) -> None:
    schema = schemathesis.openapi.from_wsgi(f"{API}/openapi.json", admin_app.reg)
    failures: list[str] = []
    cases = 0
    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy())
        def run(case: schemathesis.Case) -> None:
            nonlocal cases
            cases += 1
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {OPS_TOKEN}"}
            try:
                case.call_and_validate(app=admin_app.reg)
            except Exception as exc:  # noqa: BLE001 - collect every operation's failures
                failures.append(f"{case.method} {case.path}: {exc}")

        run()
    assert cases > 100
    assert not failures, "\n\n".join(failures[:5])
