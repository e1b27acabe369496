"""The admin API's OpenAPI document, part two: its operations (``paths``), with their path and
query parameters and their responses, every error status the server can answer included.

The router and the request checks are built from these (``api_requests.py``); the schemas they
refer to are in ``openapi_schemas.py``; ``openapi.py`` assembles the document.
"""

from __future__ import annotations

from typing import Any

from .openapi_schemas import INT, STR, object_schema, ref

__all__ = ["operations", "with_routing_statuses"]

_JSON = "application/json"


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
    return {str(c): _json(ref("Error"), text[c]) for c in (400, 401, 403, 503, *codes)}


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


def operations() -> dict[str, Any]:
    """Every operation of the API, by path (statuses answered before a handler runs are added
    by :func:`with_routing_statuses`)."""
    no_content = {"204": {"description": "Done"}}
    return {
        "/users/{user_id}/methods": {
            "parameters": [_USER],
            "get": {
                "operationId": "listMethods",
                "summary": "A user's registered methods, default method, flags and TAP",
                "responses": {"200": _json(ref("UserMethods"), "The methods"), **_errors(404)},
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
                    "200": _json(ref("Method"), "Restored"),
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
                        object_schema({"removed": {"type": "array", "items": STR}}),
                        "Methods removed",
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
                    "200": _json(object_schema({"revoked": INT}), "Sessions ended"),
                    **_errors(),
                },
            },
        },
        "/users/{user_id}/lock": {
            "parameters": [_USER],
            "get": {
                "operationId": "getLock",
                "summary": "The account's failure counters and whether its MFA codes are locked",
                "responses": {"200": _json(ref("LockState"), "The counters"), **_errors(404)},
            },
        },
        "/users/{user_id}/unlock": {
            "parameters": [_USER],
            "post": {
                "operationId": "unlock",
                "summary": "Clear the account's failure counters (audited admin.unlocked)",
                "responses": {
                    "200": _json(ref("Unlocked"), "Cleared; the counters before"),
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
                    "content": {_JSON: {"schema": ref("PerUserMfaRequest")}},
                },
                "responses": {
                    "200": _json(object_schema({"user_id": STR, "state": STR}), "The new state"),
                    **_errors(404, 501),
                },
            },
        },
        "/users/{user_id}/tap": {
            "parameters": [_USER],
            "get": {
                "operationId": "getTap",
                "summary": "The user's Temporary Access Pass (never its code)",
                "responses": {"200": _json(ref("TapStatus"), "The pass"), **_errors(404)},
            },
            "post": {
                "operationId": "issueTap",
                "summary": "Issue a Temporary Access Pass (replaces any earlier one; code shown once)",
                "requestBody": {
                    "required": False,
                    "content": {_JSON: {"schema": ref("TapRequest")}},
                },
                "responses": {"201": _json(ref("IssuedTap"), "The new pass"), **_errors(404)},
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
                    "content": {_JSON: {"schema": ref("TokenImportRequest")}},
                },
                "responses": {
                    "200": _json(ref("TokenImportResult"), "Imported"),
                    "422": _json(ref("TokenImportResult"), "Nothing imported: the problems"),
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
                        object_schema(
                            {"users": {"type": "array", "items": ref("RegistrationRow")}}
                        ),
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
                        object_schema({"users": {"type": "array", "items": ref("CampaignRow")}}),
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
                "responses": {"200": _json(ref("UsageSummary"), "The summary"), **_errors()},
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
                        object_schema({"events": {"type": "array", "items": ref("AuditEvent")}}),
                        "The events",
                    ),
                    **_errors(),
                },
            },
        },
    }


def with_routing_statuses(paths: dict[str, Any]) -> dict[str, Any]:
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
