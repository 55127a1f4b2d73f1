"""The update model: one Stripe "Update a VerificationSession" request, checked and encoded.

This module owns :class:`SessionUpdate` and :func:`parse_update`, which checks an update
against Stripe's rules (:mod:`vsbatch.model.update_rules`, with the nested option models of
:mod:`vsbatch.model.update_options`) and raises :class:`~vsbatch.errors.InvalidUpdate`, the
canonical forms of an update (:meth:`SessionUpdate.to_params`, ``canonical_json``, ``to_form``
and the generic :func:`encode_form`), :func:`idempotency_key`, and pure helpers that compare
an update with a session object (``apply_to``, ``is_satisfied_by``, ``changes``).

Unsetting works exactly as on the wire, with the empty string:

- ``{"metadata": {"k": "v", "old": ""}}`` sets ``k`` and unsets ``old``;
- ``{"metadata": ""}`` unsets every key. Unsetting all keys while setting others cannot be
  written in this form (nor sent in one request), so it is never an update;
- ``{"options": {"document": ""}}`` unsets the document options (the session then shows
  ``{}``); a document object merges its fields into the session's document options.

``None`` anywhere means "not given", as in stripe-python, which drops it from the request.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import ValidationError, model_validator

from vsbatch.errors import InvalidUpdate
from vsbatch.model.update_options import DocumentOptions, Frozen, ProvidedDetails, UpdateOptions
from vsbatch.model.update_rules import (
    DOCUMENT_FLAGS,
    TOP_FIELDS,
    VERIFICATION_TYPES,
    VerificationType,
    check_metadata,
    fail,
    given_fields,
    or_list,
)

if TYPE_CHECKING:
    from vsbatch.model.row import RowRecord

__all__ = [
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "FieldChange",
    "SessionUpdate",
    "encode_form",
    "idempotency_key",
    "key_of",
    "parse_update",
    "row_key",
]

MAX_IDEMPOTENCY_KEY_LENGTH: Final = 255
_KEY_VERSION: Final = "v1"
# Enough of the namespace to read in Stripe's dashboard; the hash covers all of it.
_READABLE_NAMESPACE_LENGTH: Final = 100
_UNREADABLE = re.compile(r"[^A-Za-z0-9._:-]+")


@dataclass(frozen=True)
class FieldChange:
    """One field an update would change: dotted ``field``, value ``before`` and ``after``.

    ``None`` stands for "absent" (an unset metadata key, a detail never given).
    """

    field: str
    before: Any
    after: Any


class SessionUpdate(Frozen):
    """One validated update of one VerificationSession, in Stripe's own shape.

    Build it with :func:`parse_update` (or the constructor, which applies the same rules and
    raises :class:`~vsbatch.errors.InvalidUpdate`). ``metadata`` maps keys to values, ``""``
    as a value unsets that key and ``""`` as the whole metadata unsets every key; treat it as
    read-only. Equal updates have equal :meth:`canonical_json` and hash alike.
    """

    metadata: dict[str, str] | Literal[""] | None = None
    options: UpdateOptions | None = None
    provided_details: ProvidedDetails | None = None
    type: VerificationType | None = None

    @model_validator(mode="before")
    @classmethod
    def _stripe_rules(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        given = given_fields(data, TOP_FIELDS, "")
        if not given:
            choices = or_list(TOP_FIELDS)
            fail(f"The update changes nothing: set at least one of {choices}.", None)
        if "metadata" in given:
            given["metadata"] = check_metadata(given["metadata"])
        for name, model in (("options", UpdateOptions), ("provided_details", ProvidedDetails)):
            if name in given and not isinstance(given[name], (Mapping, model)):
                fail(f"{name} must be an object.", name)
        if "type" in given and given["type"] not in VERIFICATION_TYPES:
            choices = or_list(VERIFICATION_TYPES)
            fail(f"{given['type']!r} is not a verification type; use {choices}.", "type")
        return given

    def __hash__(self) -> int:
        return hash(self.canonical_json())

    def to_params(self) -> dict[str, Any]:
        """The update as Stripe-shaped nested params.

        Returns:
            Only the fields the update touches, keys sorted at every level, lists in order.
        """
        params: dict[str, Any] = _sorted(self.model_dump(mode="json", exclude_none=True))
        return params

    def canonical_json(self) -> str:
        """Compact JSON of :meth:`to_params` with sorted keys: the same update, the same text."""
        return json.dumps(self.to_params(), sort_keys=True, separators=(",", ":"))

    def to_form(self) -> list[tuple[str, str]]:
        """The ``application/x-www-form-urlencoded`` pairs of this update, unescaped."""
        return encode_form(self.to_params())

    def apply_to(self, session: Mapping[str, Any]) -> dict[str, Any]:
        """The session as it would be after this update (a copy; the input is not changed).

        Document options merge field by field into the session's; unsetting them leaves
        ``{}``. Only ``metadata``, ``options``, ``provided_details`` and ``type`` change.

        Args:
            session: an ``identity.verification_session`` object as a plain dict.
        """
        after = copy.deepcopy(dict(session))
        if self.metadata == "":
            after["metadata"] = {}
        elif self.metadata is not None:
            metadata = dict(after.get("metadata") or {})
            for key, value in self.metadata.items():
                if value:
                    metadata[key] = value
                else:
                    metadata.pop(key, None)
            after["metadata"] = metadata
        if self.options is not None and self.options.document is not None:
            options = dict(after.get("options") or {})
            document = self.options.document
            merged: dict[str, Any] = {}
            if isinstance(document, DocumentOptions):
                merged = dict(options.get("document") or {})
                merged.update(document.model_dump(mode="json", exclude_none=True))
            options["document"] = merged
            after["options"] = options
        if self.provided_details is not None:
            details = dict(after.get("provided_details") or {})
            details.update(self.provided_details.model_dump(exclude_none=True))
            after["provided_details"] = details
        if self.type is not None:
            after["type"] = self.type
        return after

    def changes(self, session: Mapping[str, Any]) -> list[FieldChange]:
        """What this update would change in ``session``, field by field, in sorted order.

        An absent document flag counts as false (Stripe's default); ``allowed_types`` compare
        as sets. ``provided_details`` is only in a session retrieved with
        ``expand[]=provided_details``; without it, details always count as changes.
        """
        found = _metadata_changes(self.metadata, session.get("metadata") or {})
        document = self.options.document if self.options is not None else None
        found += _document_changes(document, (session.get("options") or {}).get("document"))
        if self.provided_details is not None:
            details = session.get("provided_details") or {}
            found += _detail_changes(self.provided_details, details)
        if self.type is not None and session.get("type") != self.type:
            found.append(FieldChange("type", session.get("type"), self.type))
        return found

        return found

    def is_satisfied_by(self, session: Mapping[str, Any]) -> bool:
        """True when ``session`` already has everything this update asks for (no changes)."""
        return not self.changes(session)


def _metadata_changes(
    wanted: dict[str, str] | Literal[""] | None, metadata: Mapping[str, Any]
) -> list[FieldChange]:
    if wanted == "":
        return [FieldChange("metadata", dict(metadata), {})] if metadata else []
    found: list[FieldChange] = []
    for key, value in sorted((wanted or {}).items()):
        before, after = metadata.get(key), value or None
        if before != after:
            found.append(FieldChange(f"metadata.{key}", before, after))
    return found


def _document_changes(
    document: DocumentOptions | Literal[""] | None, current: Mapping[str, Any] | None
) -> list[FieldChange]:
    if document == "":
        # A session model dumped to a dict may carry its absent fields as None.
        if current and any(value is not None for value in current.values()):
            return [FieldChange("options.document", current, {})]
        return []
    if document is None:
        return []
    found: list[FieldChange] = []
    wanted = document.model_dump(mode="json", exclude_none=True)
    for name, value in sorted(wanted.items()):
        before = (current or {}).get(name)
        if not _same(name, before, value):
            found.append(FieldChange(f"options.document.{name}", before, value))
    return found


def _detail_changes(wanted: ProvidedDetails, details: Mapping[str, Any]) -> list[FieldChange]:
    return [
        FieldChange(f"provided_details.{name}", details.get(name), value)
        for name, value in sorted(wanted.model_dump(exclude_none=True).items())
        if details.get(name) != value
    ]


def _same(name: str, before: Any, after: Any) -> bool:
    if name == "allowed_types":
        return isinstance(before, list) and sorted(map(str, before)) == sorted(after)
    if name in DOCUMENT_FLAGS:
        # Stripe leaves unset flags out of the object; their documented default is false.
        return bool((False if before is None else before) == after)
    return bool(before == after)


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_sorted(item) for item in value]
    return value


def parse_update(data: Mapping[str, Any]) -> SessionUpdate:
    """Check a Stripe-shaped update dict against Stripe's rules.

    Args:
        data: the update, e.g. ``{"metadata": {"k": "v", "old": ""}, "type": "id_number"}``.

    Returns:
        The validated, immutable update.

    Raises:
        InvalidUpdate: the first broken rule, with a dotted ``field`` and a one-sentence reason.
    """
    if not isinstance(data, Mapping):
        fail(f"An update must be an object, not {type(data).__name__}.", None)
    try:
        return SessionUpdate.model_validate(data)
    except ValidationError as exc:
        # The rules above refuse everything first; this only keeps pydantic's text inside.
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidUpdate(f"{field or 'The update'} is not valid.", field=field) from None


def encode_form(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Encode nested params as stripe-python does, before URL escaping.

    Dicts become ``a[b]=v``, lists are always indexed (``a[0]=v``), booleans ``true``/``false``,
    ``None`` is dropped (so unsetting needs ``""``), anything else goes through ``str``. Unlike
    stripe-python, a boolean or None inside a list is also lowercased or dropped.

    Args:
        params: the request's parameters, in the order they should be sent.

    Returns:
        ``(key, value)`` pairs, ready for ``urllib.parse.urlencode`` or httpx's ``data=``.
    """
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        _encode(str(key), value, pairs)
    return pairs


def _encode(key: str, value: Any, pairs: list[tuple[str, str]]) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for subkey, item in value.items():
            _encode(f"{key}[{subkey}]", item, pairs)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _encode(f"{key}[{index}]", item, pairs)
    elif isinstance(value, bool):
        pairs.append((key, "true" if value else "false"))
    else:
        pairs.append((key, str(value)))


def row_key(
    batch_id: str, row: int, update: SessionUpdate | dict[str, Any], stored: str | None = None
) -> str:
    """A ledger row's Idempotency-Key: ``stored`` when the row has one (a retried row keeps
    its original's; a new key generation), else derived from the batch, the row and the
    update (parsed, or its params), the same on every call (the ledger keeps only keys it
    cannot derive)."""
    if stored:
        return stored
    parsed = update if isinstance(update, SessionUpdate) else parse_update(update)
    return idempotency_key(f"{batch_id}:{row}", parsed)


def key_of(record: RowRecord) -> str | None:
    """The Idempotency-Key a ledger row is sent under (None for a row without an update)."""
    if record.params is None:
        return record.idempotency_key
    return row_key(record.batch_id, record.row, record.params, record.idempotency_key)


def idempotency_key(namespace: str, update: SessionUpdate) -> str:
    """The Idempotency-Key of one logical update, the same on every retry.

    The key is ``vsbatch-<readable namespace>-<sha256 hex>``: the readable part is the
    namespace with characters outside ``[A-Za-z0-9._:-]`` replaced by ``_`` and cut to 100
    characters; the hash covers a version tag, the whole namespace and the canonical JSON.
    Keys are at most 173 characters, whatever the namespace's length.

    Args:
        namespace: names the target and the attempt, e.g. ``f"{batch_id}:{session_id}"``.
            Stripe keys are per account, so it must include the session id.
        update: the update to send.
    """
    material = json.dumps([_KEY_VERSION, namespace, update.canonical_json()])
    digest = hashlib.sha256(material.encode("ascii")).hexdigest()
    readable = _UNREADABLE.sub("_", namespace)[:_READABLE_NAMESPACE_LENGTH]
    return f"vsbatch-{readable}-{digest}" if readable else f"vsbatch-{digest}"
