"""Migration actions: one step of what a migration changes, and the parser of its table.

This module owns :class:`Action` (its effect on the desired metadata and parameters, and its
one-line summary), the fields each op takes (:data:`ACTION_FIELDS`) and the parser of one
``[[migration.action]]`` table (:func:`parse_action`), with one argument checker per op.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from vsbatch.errors import InvalidUpdate
from vsbatch.migrations.fields import SpecError, check_keys, check_known, metadata_rules, strings
from vsbatch.model.update import parse_update

__all__ = ["ACTION_FIELDS", "Action", "parse_action"]

ACTION_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "set": ("values",),
    "copy": ("from", "to"),
    "rename": ("from", "to"),
    "unset": ("keys",),
    "document": (
        "allowed_types",
        "require_id_number",
        "require_live_capture",
        "require_matching_selfie",
    ),
    "type": ("value",),
}


@dataclass(frozen=True)
class Action:
    """One step of a migration: ``op`` (set, copy, rename, unset, document, type) and its args.

    ``args`` holds: set ``{"values": {k: v}}``; copy/rename ``{"from": k, "to": k2}``; unset
    ``{"keys": [k, ...]}``; document the ``options.document`` fields; type ``{"value": t}``.
    """

    op: str
    args: Mapping[str, Any]

    def apply(self, metadata: dict[str, str], params: dict[str, Any]) -> None:
        """Apply the step to the desired ``metadata`` and the non-metadata ``params``."""
        args = self.args
        if self.op == "set":
            metadata.update(args["values"])
        elif self.op in ("copy", "rename"):
            if args["from"] in metadata:
                value = metadata[args["from"]]
                if self.op == "rename":
                    del metadata[args["from"]]
                metadata[args["to"]] = value
        elif self.op == "unset":
            for key in args["keys"]:
                metadata.pop(key, None)
        elif self.op == "document":
            options = params.setdefault("options", {"document": {}})
            options["document"].update(args)
        else:
            params["type"] = args["value"]

    def describe(self) -> str:
        """A one-line summary, for ``vsbatch migrate list``."""
        args = self.args
        if self.op == "set":
            return "set " + ", ".join(f"{k}={v!r}" for k, v in args["values"].items())
        if self.op in ("copy", "rename"):
            return f"{self.op} {args['from']} -> {args['to']}"
        if self.op == "unset":
            return "unset " + ", ".join(args["keys"])
        if self.op == "document":
            return "document " + ", ".join(f"{k}={v}" for k, v in args.items())
        return f"type {args['value']}"


def parse_action(index: int, table: Any) -> Action:
    """The ``index``-th action of a migration; SpecError at its first bad field.

    Args:
        index: Where the action is in the migration (0-based), for the field's name.
        table: The ``[[migration.action]]`` table as TOML read it.
    """
    where = f"action[{index}]"
    if not isinstance(table, dict):
        raise SpecError(where, "an action must be a table")
    op = table.get("op")
    if op not in ACTION_FIELDS:
        raise SpecError(f"{where}.op", f"op must be one of {', '.join(ACTION_FIELDS)}")
    allowed = ACTION_FIELDS[op]
    check_known(table, ("op", *allowed), f"{where}.")
    args = {k: v for k, v in table.items() if k != "op"}
    if op != "document":  # every document option is optional; every other op's field is not
        missing = next((name for name in allowed if name not in args), None)
        if missing is not None:
            raise SpecError(f"{where}.{missing}", f"a {op} action needs {missing!r}")
    return Action(op, _ARGS[op](args, where))


def _document_args(args: dict[str, Any], where: str) -> dict[str, Any]:
    if not args:
        raise SpecError(where, "a document action sets at least one document option")
    try:
        parse_update({"options": {"document": args}})
    except InvalidUpdate as exc:
        name = (exc.field or "").rsplit(".", 1)[-1]
        raise SpecError(f"{where}.{name}", exc.reason) from None
    return args


def _set_args(args: dict[str, Any], where: str) -> dict[str, Any]:
    values = args["values"]
    if not isinstance(values, dict) or not values:
        raise SpecError(f"{where}.values", "values must be a non-empty table of strings")
    if any(not isinstance(v, str) or not v for v in values.values()):
        raise SpecError(f"{where}.values", "values must be non-empty strings (use unset)")
    metadata_rules(values, f"{where}.values")
    return args


def _move_args(args: dict[str, Any], where: str) -> dict[str, Any]:
    keys = (strings(args["from"], f"{where}.from"), strings(args["to"], f"{where}.to"))
    for name, key in zip(("from", "to"), keys, strict=True):
        if len(key) != 1:
            raise SpecError(f"{where}.{name}", f"{name} must be one metadata key")
        check_keys(key, f"{where}.{name}")
    return {"from": keys[0][0], "to": keys[1][0]}


def _unset_args(args: dict[str, Any], where: str) -> dict[str, Any]:
    keys = strings(args["keys"], f"{where}.keys")
    check_keys(keys, f"{where}.keys")
    return {"keys": list(keys)}


def _type_args(args: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        parse_update({"type": args["value"]})
    except InvalidUpdate as exc:
        raise SpecError(f"{where}.value", exc.reason) from None
    return args


# The checker of each op's fields: the arguments as the action keeps them, or SpecError.
_ARGS: Final[dict[str, Callable[[dict[str, Any], str], dict[str, Any]]]] = {
    "set": _set_args,
    "copy": _move_args,
    "rename": _move_args,
    "unset": _unset_args,
    "document": _document_args,
    "type": _type_args,
}
