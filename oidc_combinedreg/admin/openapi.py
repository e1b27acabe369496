"""The OpenAPI 3.1 document of the admin API, built as data (served at ``<api>/openapi.json``).

Written as Python rather than a static file so the server URL follows ``[web].prefix`` and the TAP
bounds follow ``[admin.tap]``. It is the one source of truth: the API's router is built from its
paths and every request is checked against its parameters and bodies (``api_requests.py``), and
the test suite fuzzes both with schemathesis (valid and invalid requests), so the document and the
endpoints cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from .config import TAP_MIN_MINUTES, AdminConfig

__all__ = ["openapi_document"]

_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Malformed request (bad parameter or body)",
        401: "No bearer token, or a wrong one",
        403: "The token's user is not in the admin group, or Conditional Access blocked",
        404: "No such user, method or pass (or a path that names no operation)",
        413: "The request body is over 1 MiB",
        409: "Conflicts with the user's methods (as many of that kind: delete one first)",
        422: "The request was understood but refused (import problems)",
        429: "Too many requests",
        501: "Not supported by this deployment",
        503: "The store is unavailable; nothing was changed",
    }
    return {str(c): _json(_ref("Error"), text[c]) for c in (400, 401, 403, 503, *codes)}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_TIME = {"type": "integer", "description": "seconds since the epoch"}


def _object(props: dict[str, Any], *, required: tuple[str, ...] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props if required is None else required),
    }


def _schemas(max_minutes: int) -> dict[str, Any]:
    method = _object(
        {
            "id": _STR,
            "kind": _STR,
            "label": _STR,
            "mfa": _BOOL,
            "sspr": _BOOL,
            "default": _BOOL,
            "deletable": _BOOL,
            "created_at": _TIME,
            "last_used_at": _nullable(_TIME),
            "reported_at": {
                **_nullable(_TIME),
                "description": "set: reported as not the user's (This wasn't me): out of use",
            },
            "activated": {
                **_nullable(_BOOL),
                "description": (
                    "hardware tokens: false until the user's first code (an imported token works"
                    " before); null for kinds without activation"
                ),
            },
        }
    )
    tap_status = _object(
        {
            "id": _STR,
            "created_at": _TIME,
            "expires_at": _TIME,
            "one_time": _BOOL,
            "issued_by": _STR,
            "usable": _BOOL,
        }
    )
    activity = _object(
        {
            "started": _INT,
            "succeeded": _INT,
            "failed": _INT,
            "failed_by_reason": {"type": "object", "additionalProperties": _INT},
        }
    )
    return {
        "Error": _object({"error": _STR, "message": _STR}, required=("error",)),
        "Method": method,
        "TapStatus": tap_status,
        "UserMethods": _object(
            {
                "user_id": _STR,
                "methods": {"type": "array", "items": _ref("Method")},
                "reported": {"type": "array", "items": _ref("Method")},
                "default_method_id": _nullable(_STR),
                "reregister": _BOOL,
                "tap": _nullable(_ref("TapStatus")),
            }
        ),
        "IssuedTap": _object(
            {
                "id": _STR,
                "user_id": _STR,
                "code": {"type": "string", "description": "shown once, never stored in clear"},
                "created_at": _TIME,
                "expires_at": _TIME,
                "one_time": _BOOL,
            }
        ),
        "TapRequest": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "lifetime_minutes": {
                    "type": "integer",
                    "minimum": TAP_MIN_MINUTES,
                    "maximum": max_minutes,
                },
                "one_time": _BOOL,
            },
        },
        "LockState": _object(
            {
                "user_id": _STR,
                "locked": {
                    "type": "boolean",
                    "description": "MFA codes refused until a success or an unlock",
                },
                "cooling_down": {
                    "type": "boolean",
                    "description": "MFA codes refused until the window ends",
                },
                "consecutive_failures": _INT,
                "max_consecutive_failures": _INT,
                "window_failures": _INT,
                "failures_per_window": _INT,
                "tap_failures": {
                    "type": "integer",
                    "description": "wrong Temporary Access Passes in the window, all addresses",
                },
                "reset_attempts_today": _INT,
            }
        ),
        "Unlocked": _object({"user_id": _STR, "was_locked": _BOOL, "before": _ref("LockState")}),
        "PerUserMfaRequest": {
            **_object({"state": {"type": "string", "enum": ["disabled", "enabled", "enforced"]}}),
            "additionalProperties": False,
        },
        "TokenImportRequest": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "format": {"type": "string", "enum": ["csv", "pskc"]},
                "content": {
                    "type": "string",
                    "description": "the CSV text, or the PSKC document in base64",
                },
                "key": {"type": "string", "description": "PSKC pre-shared key, base64"},
                "default_user": {"type": "string", "minLength": 1, "maxLength": 200},
            },
            "required": ["format", "content"],
        },
        "TokenImportResult": _object(
            {
                "imported": {"type": "array", "items": _STR},
                "problems": {
                    "type": "array",
                    "items": _object({"source": _STR, "message": _STR}),
                },
            }
        ),
        "RegistrationRow": _object(
            {
                "user_id": _STR,
                "display_name": _STR,
                "in_directory": _BOOL,
                "mfa_capable": _BOOL,
                "sspr_registered": _BOOL,
                "sspr_capable": _BOOL,
                "default_method": _nullable(_STR),
                "methods": {"type": "array", "items": _STR},
                "locked": _BOOL,
            }
        ),
        "CampaignRow": _object(
            {
                "user_id": _STR,
                "display_name": _STR,
                "status": {
                    "type": "string",
                    "enum": ["added", "snoozed", "required", "asked", "pending", "excluded"],
                },
                "asked": _INT,
                "first_asked": _nullable(_STR),
                "last_asked": _nullable(_STR),
                "snoozes": _INT,
                "snoozed_until": _nullable(_STR),
                "added": _nullable(_STR),
            }
        ),
        "Activity": activity,
        "UsageSummary": _object(
            {
                "since": _nullable(_STR),
                "until": _nullable(_STR),
                "users": _INT,
                "mfa_capable": _INT,
                "sspr_registered": _INT,
                "sspr_capable": _INT,
                "methods": {
                    "type": "object",
                    "additionalProperties": _object(
                        {"methods": _INT, "users": _INT, "added": _INT}
                    ),
                },
                "activity": {"type": "object", "additionalProperties": _ref("Activity")},
            }
        ),
        "AuditEvent": _object(
            {
                "at": _STR,
                "event": _STR,
                "user_id": _nullable(_STR),
                "ip": _nullable(_STR),
                "outcome": _STR,
                "correlation_id": _nullable(_STR),
                "detail": {"type": "object"},
            }
        ),
    }


_USER = {
    "name": "user_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}
_METHOD = {
    "name": "method_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}


def _time_param(name: str, text: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": text,
        "schema": {"type": "string", "format": "date-time"},
    }


def _paths() -> dict[str, Any]:
    no_content = {"204": {"description": "Done"}}
    return {
        "/users/{user_id}/methods": {
            "parameters": [_USER],
            "get": {
                "operationId": "listMethods",
                "summary": "A user's registered methods, default method, flags and TAP",
                "responses": {"200": _json(_ref("UserMethods"), "The methods"), **_errors(404)},
            },
        },
        "/users/{user_id}/methods/{method_id}": {
            "parameters": [_USER, _METHOD],
            "delete": {
                "operationId": "deleteMethod",
                "summary": "Delete one method (audited, the user is notified by the method's flow)",
                "responses": {**no_content, **_errors(404)},
            },
        },
        "/users/{user_id}/methods/{method_id}/restore": {
            "parameters": [_USER, _METHOD],
            "post": {
                "operationId": "restoreMethod",
                "summary": "Take a method the user reported as not theirs back into use"
                " (audited method.restored; the user is notified)",
                "responses": {
                    "200": _json(_ref("Method"), "Restored"),
                    **_errors(404, 409),
                },
            },
        },
        "/users/{user_id}/reregister": {
            "parameters": [_USER],
            "post": {
                "operationId": "requireReregistration",
                "summary": (
                    "Remove the user's MFA methods and app passwords and run the wizard at next"
                    " sign-in"
                ),
                "responses": {
                    "200": _json(
                        _object({"removed": {"type": "array", "items": _STR}}), "Methods removed"
                    ),
                    **_errors(404),
                },
            },
        },
        "/users/{user_id}/sessions/revoke": {
            "parameters": [_USER],
            "post": {
                "operationId": "revokeSessions",
                "summary": "End every middleware session (MFA sign-in) of the user",
                "responses": {
                    "200": _json(_object({"revoked": _INT}), "Sessions ended"),
                    **_errors(),
                },
            },
        },
        "/users/{user_id}/lock": {
            "parameters": [_USER],
            "get": {
                "operationId": "getLock",
                "summary": "The account's failure counters and whether its MFA codes are locked",
                "responses": {"200": _json(_ref("LockState"), "The counters"), **_errors(404)},
            },
        },
        "/users/{user_id}/unlock": {
            "parameters": [_USER],
            "post": {
                "operationId": "unlock",
                "summary": "Clear the account's failure counters (audited admin.unlocked)",
                "responses": {
                    "200": _json(_ref("Unlocked"), "Cleared; the counters before"),
                    **_errors(404),
                },
            },
        },
        "/users/{user_id}/per-user-mfa": {
            "parameters": [_USER],
            "put": {
                "operationId": "setPerUserMfa",
                "summary": "Set the legacy per-user MFA state through the Directory",
                "requestBody": {
                    "required": True,
                    "content": {_JSON: {"schema": _ref("PerUserMfaRequest")}},
                },
                "responses": {
                    "200": _json(_object({"user_id": _STR, "state": _STR}), "The new state"),
                    **_errors(404, 501),
                },
            },
        },
        "/users/{user_id}/tap": {
            "parameters": [_USER],
            "get": {
                "operationId": "getTap",
                "summary": "The user's Temporary Access Pass (never its code)",
                "responses": {"200": _json(_ref("TapStatus"), "The pass"), **_errors(404)},
            },
            "post": {
                "operationId": "issueTap",
                "summary": "Issue a Temporary Access Pass (replaces any earlier one; code shown once)",
                "requestBody": {
                    "required": False,
                    "content": {_JSON: {"schema": _ref("TapRequest")}},
                },
                "responses": {"201": _json(_ref("IssuedTap"), "The new pass"), **_errors(404)},
            },
            "delete": {
                "operationId": "revokeTap",
                "summary": "Delete the user's Temporary Access Pass",
                "responses": {**no_content, **_errors(404)},
            },
        },
        "/hardware-tokens": {
            "post": {
                "operationId": "importHardwareTokens",
                "summary": "Import OATH hardware tokens (Entra CSV or PSKC), all or nothing",
                "requestBody": {
                    "required": True,
                    "content": {_JSON: {"schema": _ref("TokenImportRequest")}},
                },
                "responses": {
                    "200": _json(_ref("TokenImportResult"), "Imported"),
                    "422": _json(_ref("TokenImportResult"), "Nothing imported: the problems"),
                    **{k: v for k, v in _errors(501).items() if k != "422"},
                },
            },
        },
        "/reports/registration": {
            "get": {
                "operationId": "registrationReport",
                "summary": "Registration details per user",
                "parameters": [
                    {
                        "name": "user",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                    }
                ],
                "responses": {
                    "200": _json(
                        _object({"users": {"type": "array", "items": _ref("RegistrationRow")}}),
                        "One row per user",
                    ),
                    **_errors(),
                },
            },
        },
        "/reports/campaign": {
            "get": {
                "operationId": "campaignReport",
                "summary": "The registration campaign: who was asked, snoozed, is required, added",
                "parameters": [
                    {
                        "name": "user",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                    }
                ],
                "responses": {
                    "200": _json(
                        _object({"users": {"type": "array", "items": _ref("CampaignRow")}}),
                        "One row per user the campaign concerns",
                    ),
                    **_errors(),
                },
            },
        },
        "/reports/usage": {
            "get": {
                "operationId": "usageReport",
                "summary": "Methods by kind and registration/reset/MFA/TAP activity in a period",
                "parameters": [
                    _time_param("since", "start of the period (inclusive)"),
                    _time_param("until", "end of the period (exclusive)"),
                ],
                "responses": {"200": _json(_ref("UsageSummary"), "The summary"), **_errors()},
            },
        },
        "/audit": {
            "get": {
                "operationId": "auditLog",
                "summary": "The audit log, newest first",
                "parameters": [
                    {
                        "name": "user",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                    },
                    {
                        "name": "event",
                        "in": "query",
                        "required": False,
                        "description": "an event type or a dotted prefix such as 'tap.'",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 100},
                    },
                    _time_param("since", "events at or after"),
                    _time_param("until", "events before"),
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                ],
                "responses": {
                    "200": _json(
                        _object({"events": {"type": "array", "items": _ref("AuditEvent")}}),
                        "The events",
                    ),
                    **_errors(),
                },
            },
        },
    }


def _with_routing_statuses(paths: dict[str, Any]) -> dict[str, Any]:
    """Every status the server answers before a handler runs, on every operation it can reach:
    404 where a path parameter may name nothing (or hold a "/"), 413 where a body is read."""
    for path, item in paths.items():
        for key, op in item.items():
            if key == "parameters":
                continue
            extra = ([404] if "{" in path else []) + ([413] if "requestBody" in op else [])
            for code, response in _errors(*extra).items():
                op["responses"].setdefault(code, response)
    return paths


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
        "paths": _with_routing_statuses(_paths()),
        "components": {
            "schemas": _schemas(config.tap.max_lifetime_minutes),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
