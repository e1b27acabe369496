"""The OpenAPI 3.1 document of the admin API, built as data (served at ``<api>/openapi.json``).

Written as Python rather than a static file so the server URL follows ``[web].prefix`` and the TAP
bounds follow ``[admin.tap]``. It is the one source of truth: the API's router is built from its
paths and every request is checked against its parameters and bodies (``api_requests.py``), and
the test suite fuzzes both with schemathesis (valid and invalid requests), so the document and the
endpoints cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from .config import AdminConfig
from .openapi_paths import operations, with_routing_statuses
from .openapi_schemas import component_schemas

__all__ = ["openapi_document"]


def openapi_document(api_root: str, config: AdminConfig) -> dict[str, Any]:
    """The document for an API mounted at ``api_root`` (e.g. ``/security-info/admin/api``)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "oidc-combinedreg admin API",
            "version": "1",
            "description": "Manage users' security info, Temporary Access Passes and reports. "
            "Every call needs `Authorization: Bearer <token>` (see docs/admin.md).",
        },
        "servers": [{"url": api_root}],
        "security": [{"bearer": []}],
        "paths": with_routing_statuses(operations()),
        "components": {
            "schemas": component_schemas(config.tap.max_lifetime_minutes),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
