"""The admin API's OpenAPI document, part one: its JSON Schemas (``components/schemas``), and the
pieces they are built from (also used by the operations in ``openapi_paths.py``).

The TAP's lifetime bounds come from ``[admin.tap]``; everything else is fixed. ``openapi.py``
assembles the document.
"""

from __future__ import annotations

from typing import Any

from .config import TAP_MIN_MINUTES

__all__ = ["INT", "STR", "component_schemas", "object_schema", "ref"]


def ref(name: str) -> dict[str, str]:
    """A reference to one of :func:`component_schemas`."""
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


STR = {"type": "string"}
INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_TIME = {"type": "integer", "description": "seconds since the epoch"}


def object_schema(
    props: dict[str, Any], *, required: tuple[str, ...] | None = None
) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props if required is None else required),
    }


def component_schemas(max_minutes: int) -> dict[str, Any]:
    """``components/schemas``; ``max_minutes``: the longest TAP lifetime ``[admin.tap]`` allows."""
    method = object_schema(
        {
            "id": STR,
            "kind": STR,
            "label": {
                **STR,
                "description": (
                    "as stored: the user's name for it, a masked number or address; empty or the"
                    " kind's English name when the user gave none"
                ),
            },
            "display_name": {
                **STR,
                "description": (
                    "the name the user sees (English): the kind and what tells it apart, e.g."
                    " 'Authenticator app (#2, added Dec 6, 2026)'"
                ),
            },
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
    tap_status = object_schema(
        {
            "id": STR,
            "created_at": _TIME,
            "expires_at": _TIME,
            "one_time": _BOOL,
            "issued_by": STR,
            "usable": _BOOL,
        }
    )
    activity = object_schema(
        {
            "started": INT,
            "succeeded": INT,
            "failed": INT,
            "failed_by_reason": {"type": "object", "additionalProperties": INT},
        }
    )
    return {
        "Error": object_schema({"error": STR, "message": STR}, required=("error",)),
        "Method": method,
        "TapStatus": tap_status,
        "UserMethods": object_schema(
            {
                "user_id": STR,
                "methods": {"type": "array", "items": ref("Method")},
                "reported": {"type": "array", "items": ref("Method")},
                "default_method_id": _nullable(STR),
                "reregister": _BOOL,
                "tap": _nullable(ref("TapStatus")),
            }
        ),
        "IssuedTap": object_schema(
            {
                "id": STR,
                "user_id": STR,
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
        "LockState": object_schema(
            {
                "user_id": STR,
                "locked": {
                    "type": "boolean",
                    "description": "MFA codes refused until a success or an unlock",
                },
                "cooling_down": {
                    "type": "boolean",
                    "description": "MFA codes refused until the window ends",
                },
                "consecutive_failures": INT,
                "max_consecutive_failures": INT,
                "window_failures": INT,
                "failures_per_window": INT,
                "tap_failures": {
                    "type": "integer",
                    "description": "wrong Temporary Access Passes in the window, all addresses",
                },
                "reset_attempts_today": INT,
            }
        ),
        "Unlocked": object_schema(
            {"user_id": STR, "was_locked": _BOOL, "before": ref("LockState")}
        ),
        "PerUserMfaRequest": {
            **object_schema(
                {"state": {"type": "string", "enum": ["disabled", "enabled", "enforced"]}}
            ),
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
        "TokenImportResult": object_schema(
            {
                "imported": {"type": "array", "items": STR},
                "problems": {
                    "type": "array",
                    "items": object_schema({"source": STR, "message": STR}),
                },
            }
        ),
        "RegistrationRow": object_schema(
            {
                "user_id": STR,
                "display_name": STR,
                "in_directory": _BOOL,
                "mfa_capable": _BOOL,
                "sspr_registered": _BOOL,
                "sspr_capable": _BOOL,
                "default_method": _nullable(STR),
                "methods": {"type": "array", "items": STR},
                "locked": _BOOL,
            }
        ),
        "CampaignRow": object_schema(
            {
                "user_id": STR,
                "display_name": STR,
                "status": {
                    "type": "string",
                    "enum": ["added", "snoozed", "required", "asked", "pending", "excluded"],
                },
                "asked": INT,
                "first_asked": _nullable(STR),
                "last_asked": _nullable(STR),
                "snoozes": INT,
                "snoozed_until": _nullable(STR),
                "added": _nullable(STR),
            }
        ),
        "Activity": activity,
        "UsageSummary": object_schema(
            {
                "since": _nullable(STR),
                "until": _nullable(STR),
                "users": INT,
                "mfa_capable": INT,
                "sspr_registered": INT,
                "sspr_capable": INT,
                "methods": {
                    "type": "object",
                    "additionalProperties": object_schema(
                        {"methods": INT, "users": INT, "added": INT}
                    ),
                },
                "activity": {"type": "object", "additionalProperties": ref("Activity")},
            }
        ),
        "AuditEvent": object_schema(
            {
                "at": STR,
                "event": STR,
                "user_id": _nullable(STR),
                "ip": _nullable(STR),
                "outcome": STR,
                "correlation_id": _nullable(STR),
                "detail": {"type": "object"},
            }
        ),
    }
