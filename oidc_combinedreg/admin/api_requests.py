"""The admin API's requests, checked against its OpenAPI document: one source of truth.

The router (``web/admin_api.py``) is built from the document's paths, and every request is checked
here against its operation's parameters and request body before a handler runs, so what the
document promises and what the server accepts cannot drift apart (the test suite fuzzes both with
schemathesis). The checks cover the part of JSON Schema 2020-12 the document uses: ``type``,
``enum``, ``minLength``/``maxLength`` (code points), ``minimum``/``maximum``, ``required``,
``properties``, ``additionalProperties``, ``anyOf``, ``$ref``, and ``format: date-time`` (RFC 3339
section 5.6) for query parameters.

Query parameters the operation does not declare, or a parameter given twice, are refused: an admin
who mistypes ``?usr=alice`` gets a 400 naming it, not the whole report. Every refusal is an
``InvalidInput`` naming the field and the expectation (the API answers 400).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import InvalidInput
from ..json_text import encodable
from .reports import parse_iso

__all__ = ["HTTP_METHODS", "Checked", "RequestSchema"]

#: the operation keys of an OpenAPI path item
HTTP_METHODS = ("get", "put", "post", "delete", "patch")

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)
_INTEGER = re.compile(r"^-?\d{1,18}$", re.ASCII)
_TYPE_NAMES = {
    "object": "a JSON object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "boolean": "true or false",
    "null": "null",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Checked:
    """A request's values, checked: path and query parameters, and the JSON body (``{}`` when
    the operation takes none or it was left out). Date-time query parameters are timestamps."""

    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Operation:
    path_params: Mapping[str, Mapping[str, Any]]
    query_params: Mapping[str, Mapping[str, Any]]
    body: Mapping[str, Any] | None


class RequestSchema:
    """Checks requests against the operations of one OpenAPI document."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._schemas: Mapping[str, Any] = document.get("components", {}).get("schemas", {})
        self.operations: dict[str, _Operation] = {}
        for item in document["paths"].values():
            shared = list(item.get("parameters", []))
            for method in HTTP_METHODS:
                if method in item:
                    op = item[method]
                    params = shared + list(op.get("parameters", []))
                    self.operations[op["operationId"]] = _Operation(
                        path_params={p["name"]: p for p in params if p["in"] == "path"},
                        query_params={p["name"]: p for p in params if p["in"] == "query"},
                        body=op.get("requestBody"),
                    )

    def takes_body(self, operation_id: str) -> bool:
        return self.operations[operation_id].body is not None

    def check(
        self,
        operation_id: str,
        *,
        path: Mapping[str, str],
        query: Sequence[tuple[str, str]],
        body: bytes | None,
        mimetype: str,
    ) -> Checked:
        """Raise ``InvalidInput`` unless the request is one the document allows. ``body`` is read
        only for operations that take one (None: not read)."""
        op = self.operations[operation_id]
        checked_path = {
            name: self._value(param["schema"], path.get(name), name)
            for name, param in op.path_params.items()
        }
        checked_query: dict[str, Any] = {}
        for name, text in query:
            param = op.query_params.get(name)
            if param is None:
                allowed = ", ".join(op.query_params) or "none"
                raise InvalidInput(name, f"expected no such query parameter (allowed: {allowed})")
            if name in checked_query:
                raise InvalidInput(name, "expected at most once")
            checked_query[name] = self._query_value(param["schema"], text, name)
        for name, param in op.query_params.items():
            if param.get("required") and name not in checked_query:
                raise InvalidInput(name, "expected: this query parameter is required")
        checked_body = self._body(op.body, body, mimetype) if op.body is not None else {}
        return Checked(path=checked_path, query=checked_query, body=checked_body)

    # -- parts --------------------------------------------------------------------------------

    def _query_value(self, schema: Mapping[str, Any], text: str, name: str) -> Any:
        schema = self._resolve(schema)
        if schema.get("type") == "integer":
            if not _INTEGER.match(text):
                raise InvalidInput(name, _integer_expectation(schema))
            return self._value(schema, int(text), name)
        value = self._value(schema, text, name)
        if schema.get("format") == "date-time":
            try:
                if not _RFC3339.match(text):
                    raise ValueError(text)
                return parse_iso(text)
            except ValueError:
                raise InvalidInput(
                    name, "expected an RFC 3339 date-time, e.g. 2026-01-31T08:00:00Z"
                ) from None
        return value

    def _body(self, spec: Mapping[str, Any], raw: bytes | None, mimetype: str) -> dict[str, Any]:
        if not raw:
            if spec.get("required"):
                raise InvalidInput("body", "expected a JSON object")
            return {}
        if mimetype != "application/json":
            raise InvalidInput("body", "expected Content-Type: application/json")
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise InvalidInput("body", "expected a JSON object") from None
        if not encodable(data):  # valid JSON, but not text (json_text.py)
            raise InvalidInput("body", "expected a JSON object of text (no lone surrogates)")
        if not isinstance(data, dict):
            raise InvalidInput("body", "expected a JSON object")
        schema = spec["content"]["application/json"]["schema"]
        checked: dict[str, Any] = self._value(schema, data, "body")
        return checked

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return self._resolve(self._schemas[ref.rsplit("/", 1)[-1]])
        return schema

    def _value(self, schema: Mapping[str, Any], value: Any, where: str) -> Any:
        """``value`` checked against ``schema`` (integral floats become ints), or InvalidInput
        naming ``where`` (a property's name, ``a.b`` when nested)."""
        schema = self._resolve(schema)
        if "anyOf" in schema:
            for option in schema["anyOf"]:
                try:
                    return self._value(option, value, where)
                except InvalidInput:
                    continue
            return self._value(schema["anyOf"][0], value, where)  # its message
        kind = schema.get("type")
        if kind == "integer" and isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON Schema: 60.0 is an integer
        if kind is not None and not _is_type(value, kind):
            expected = (
                _integer_expectation(schema)
                if kind == "integer"
                else f"expected {_TYPE_NAMES[kind]}"
            )
            raise InvalidInput(where, expected)
        if "enum" in schema and value not in schema["enum"]:
            raise InvalidInput(where, f"expected one of {', '.join(map(repr, schema['enum']))}")
        if kind == "string":
            _check_length(schema, value, where)
        elif kind == "integer":
            low, high = schema.get("minimum"), schema.get("maximum")
            if (low is not None and value < low) or (high is not None and value > high):
                raise InvalidInput(where, _integer_expectation(schema))
        elif kind == "object":
            return self._object(schema, value, where)
        elif kind == "array" and "items" in schema:
            return [self._value(schema["items"], v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    def _object(self, schema: Mapping[str, Any], value: dict[str, Any], where: str) -> Any:
        props: Mapping[str, Any] = schema.get("properties", {})
        prefix = "" if where == "body" else f"{where}."
        for name in schema.get("required", []):
            if name not in value:
                raise InvalidInput(prefix + name, "expected: this field is required")
        out: dict[str, Any] = {}
        for name, item in value.items():
            if name in props:
                out[name] = self._value(props[name], item, prefix + name)
            elif schema.get("additionalProperties", True) is False:
                allowed = ", ".join(props)
                raise InvalidInput(prefix + name, f"expected no such field (allowed: {allowed})")
            else:
                out[name] = item
        return out


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    return kind == "null" and value is None


def _integer_expectation(schema: Mapping[str, Any]) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f"expected an integer from {low} to {high}"
    if low is not None:
        return f"expected an integer of at least {low}"
    return "expected an integer"


def _check_length(schema: Mapping[str, Any], value: str, where: str) -> None:
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if len(value) < low or (high is not None and len(value) > high):
        if high is None:
            raise InvalidInput(where, f"expected at least {low} characters")
        raise InvalidInput(where, f"expected {low} to {high} characters")
