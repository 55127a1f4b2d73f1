"""Stripe's form encoding and the parameter tables that validate it.

Stripe takes ``application/x-www-form-urlencoded`` bodies (and query strings) with literal
brackets for nesting, ``a[b][c]=v``, indexed arrays ``a[0]=x&a[1]=y`` (``a[]=x`` works too),
``true``/``false`` booleans and ``""`` to unset. :func:`parse_pairs` turns the pairs into nested
dicts; :func:`validate` walks them with a parameter table written in the JSON-schema subset of
Stripe's OpenAPI spec (``type``, ``enum``, ``properties``, ``items``, ``anyOf``,
``additionalProperties``), so :data:`UPDATE_PARAMETERS` can be compared with the spec itself.

Error codes for a value of the wrong type are ``parameter_invalid_<type>`` (``_string`` for a value
outside an enum); Stripe documents ``parameter_unknown``, ``parameter_missing`` and
``parameter_invalid_empty`` but not the per-type codes, so those are the emulator's choice.
``""`` unsets only where the spec says so: a metadata key, ``metadata`` itself, or a parameter
whose schema lists ``""`` (``options[document]``); any other named string parameter
(``provided_details[email]``, ``type``) answers ``parameter_invalid_empty``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "CREATE_PARAMETERS",
    "EXPANDABLE_FIELDS",
    "LIST_PARAMETERS",
    "UPDATE_PARAMETERS",
    "ParamError",
    "parse_pairs",
    "validate",
]

Schema = dict[str, Any]

_STRING: Final[Schema] = {"type": "string"}
_BOOLEAN: Final[Schema] = {"type": "boolean"}
_INTEGER: Final[Schema] = {"type": "integer"}

UPDATE_PARAMETERS: Final[dict[str, Schema]] = {
    "expand": {"type": "array", "items": _STRING},
    "metadata": {"type": "object", "additionalProperties": _STRING},
    "options": {
        "type": "object",
        "properties": {
            "document": {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {
                            "allowed_types": {
                                "type": "array",
                                "items": {
                                    "type": "string",
                                    "enum": ["driving_license", "id_card", "passport"],
                                },
                            },
                            "require_id_number": _BOOLEAN,
                            "require_live_capture": _BOOLEAN,
                            "require_matching_selfie": _BOOLEAN,
                        },
                    },
                    {"type": "string", "enum": [""]},
                ]
            }
        },
    },
    "provided_details": {
        "type": "object",
        "properties": {"email": _STRING, "phone": _STRING},
    },
    "type": {"type": "string", "enum": ["document", "id_number"]},
}
"""The update operation's request body, property by property, as in Stripe's OpenAPI spec."""

CREATE_PARAMETERS: Final[dict[str, Schema]] = {
    **UPDATE_PARAMETERS,
    "client_reference_id": _STRING,
    "related_customer": _STRING,
    "related_customer_account": _STRING,
    "related_person": {"type": "object", "properties": {"account": _STRING, "person": _STRING}},
    "return_url": _STRING,
    "verification_flow": _STRING,
}
"""The create operation's request body (the fields the emulator stores)."""

LIST_PARAMETERS: Final[dict[str, Schema]] = {
    "client_reference_id": _STRING,
    "created": {
        "anyOf": [
            {
                "type": "object",
                "properties": {"gt": _INTEGER, "gte": _INTEGER, "lt": _INTEGER, "lte": _INTEGER},
            },
            _INTEGER,
        ]
    },
    "ending_before": _STRING,
    "expand": {"type": "array", "items": _STRING},
    "limit": _INTEGER,
    "related_customer": _STRING,
    "related_customer_account": _STRING,
    "starting_after": _STRING,
    "status": {"type": "string", "enum": ["canceled", "processing", "requires_input", "verified"]},
}
"""The list operation's query parameters."""

EXPAND_ONLY_PARAMETERS: Final[dict[str, Schema]] = {"expand": {"type": "array", "items": _STRING}}

EXPANDABLE_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "last_error",
        "last_verification_report",
        "options",
        "provided_details",
        "redaction",
        "related_person",
        "verified_outputs",
    }
)

_BRACKETS = re.compile(r"\[([^\[\]]*)\]")


class ParamError(Exception):
    """A request parameter Stripe would refuse with HTTP 400 before executing anything."""

    def __init__(self, message: str, *, code: str | None, param: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param


def _split_key(key: str) -> list[str]:
    """Split ``a[b][]`` into ``["a", "b", ""]``; raise ParamError on unbalanced brackets."""
    start = key.find("[")
    if start < 0:
        return [key]
    head, rest = key[:start], key[start:]
    parts = _BRACKETS.findall(rest)
    if not head or "".join(f"[{part}]" for part in parts) != rest:
        if head == "metadata":
            raise ParamError(
                f"Invalid key: {rest} must be a string under 40 characters without brackets",
                code="parameter_invalid_string",
                param="metadata",
            )
        raise ParamError(f"Received unknown parameter: {key}", code="parameter_unknown", param=key)
    return [head, *parts]


def parse_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Nest decoded form pairs: ``[("a[b]", "1")]`` -> ``{"a": {"b": "1"}}``.

    Arrays stay dicts keyed by index (``[]`` appends) until :func:`validate` knows the field is
    an array. A later pair wins over an earlier scalar at the same place.

    Raises:
        ParamError: A key has unbalanced brackets.
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = _split_key(key)
        node = root
        for part in parts[:-1]:
            name = part or str(len(node))
            child = node.get(name)
            if not isinstance(child, dict):
                child = {}
                node[name] = child
            node = child
        last = parts[-1]
        node[last or str(len(node))] = value
    return root


def _join(prefix: str, key: str) -> str:
    return f"{prefix}[{key}]" if prefix else key


def _enum_text(values: list[str]) -> str:
    if len(values) == 1:
        return values[0]
    return ", ".join(values[:-1]) + f", or {values[-1]}"


def _check(schema: Schema, value: Any, name: str) -> Any:
    """Validate one value against a table entry and return it normalised (bools, ints, lists)."""
    if "anyOf" in schema:
        return _check(_branch_for(schema["anyOf"], value), value, name)
    kind: Any = schema.get("type")  # None for a schema without a type: a string
    if kind in _CONTAINER_CHECKS:
        return _CONTAINER_CHECKS[kind](schema, value, name)
    if not isinstance(value, str):
        raise ParamError(f"Invalid {kind}: {name}", code=f"parameter_invalid_{kind}", param=name)
    return _SCALAR_CHECKS.get(kind, _check_string)(schema, value, name)


def _branch_for(branches: list[Schema], value: Any) -> Schema:
    """The ``anyOf`` branch for a value: the object branch for a dict, else the first other."""
    wanted = "object" if isinstance(value, dict) else None
    for branch in branches:
        if (branch.get("type") == "object") == (wanted == "object"):
            return branch
    return branches[0]


def _check_boolean(schema: Schema, value: str, name: str) -> bool:
    if value not in ("true", "false"):
        raise ParamError(f"Invalid boolean: {value}", code="parameter_invalid_boolean", param=name)
    return value == "true"


def _check_integer(schema: Schema, value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ParamError(
            f"Invalid integer: {value}", code="parameter_invalid_integer", param=name
        ) from None


def _check_string(schema: Schema, value: str, name: str) -> str:
    enum: list[str] | None = schema.get("enum")
    if enum == [""] and value:
        raise ParamError("Invalid hash", code="parameter_invalid_object", param=name)
    if enum is not None and value not in enum:
        raise ParamError(
            f"Invalid {name}: must be one of {_enum_text(enum)}",
            code="parameter_invalid_string",
            param=name,
        )
    return value


def _cannot_unset(name: str) -> ParamError:
    return ParamError(
        f"You passed an empty string for '{name}'. We assume empty values are an attempt to "
        f"unset a parameter; however '{name}' cannot be unset. You should remove '{name}' "
        "from your request or supply a non-empty value.",
        code="parameter_invalid_empty",
        param=name,
    )


def _takes_empty(schema: Schema) -> bool:
    """Whether ``""`` is a value of this named parameter (Stripe's spec lists it when it is)."""
    if schema.get("type") != "string":
        return True  # objects decide for themselves; other scalars fail their own check
    return "" in schema.get("enum", ())


def _check_object(schema: Schema, value: Any, name: str) -> Any:
    if value == "" and "additionalProperties" in schema:
        return ""
    if value == "":
        raise _cannot_unset(name)
    if not isinstance(value, dict):
        raise ParamError("Invalid hash", code="parameter_invalid_object", param=name)
    properties: dict[str, Schema] = schema.get("properties") or {}
    extra: Schema | None = schema.get("additionalProperties")
    out: dict[str, Any] = {}
    for key, item in value.items():
        child = _join(name, key)
        sub = properties.get(key)
        if sub is not None and item == "" and not _takes_empty(sub):
            raise _cannot_unset(child)
        if sub is None:
            sub = extra  # a metadata value: "" unsets that key
        if sub is None:
            raise ParamError(
                f"Received unknown parameter: {child}", code="parameter_unknown", param=child
            )
        out[key] = _check(sub, item, child)
    return out


def _check_array(schema: Schema, value: Any, name: str) -> list[Any]:
    if value == "":
        return []
    if not isinstance(value, dict) or not all(key.isdigit() for key in value):
        raise ParamError("Invalid array", code="parameter_invalid_array", param=name)
    ordered = sorted(value.items(), key=lambda item: int(item[0]))
    return [_check(schema["items"], item, f"{name}[{key}]") for key, item in ordered]


# Checks by schema type: a container takes any value, a scalar a form value (always text);
# a type in neither table is a string.
_CONTAINER_CHECKS: Final[dict[str, Callable[[Schema, Any, str], Any]]] = {
    "object": _check_object,
    "array": _check_array,
}
_SCALAR_CHECKS: Final[dict[str, Callable[[Schema, str, str], Any]]] = {
    "boolean": _check_boolean,
    "integer": _check_integer,
}


def validate(table: dict[str, Schema], params: dict[str, Any]) -> dict[str, Any]:
    """Check parsed parameters against a table and return them normalised.

    Raises:
        ParamError: An unknown parameter, or a value of the wrong type or outside its enum.
    """
    checked: dict[str, Any] = _check_object({"type": "object", "properties": table}, params, "")
    return checked
