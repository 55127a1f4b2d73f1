"""The update model: one Stripe "Update a VerificationSession" request, checked and encoded.

This module owns :class:`SessionUpdate` (and its nested option models), Stripe's rules for an
update (:func:`parse_update`, which raises :class:`~vsbatch.errors.InvalidUpdate`), the
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
from typing import Any, Final, Literal, NoReturn, get_args

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from vsbatch.errors import InvalidUpdate

__all__ = [
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "DocumentOptions",
    "DocumentType",
    "FieldChange",
    "ProvidedDetails",
    "SessionUpdate",
    "UpdateOptions",
    "VerificationType",
    "encode_form",
    "idempotency_key",
    "parse_update",
]

DocumentType = Literal["driving_license", "id_card", "passport"]
VerificationType = Literal["document", "id_number"]

MAX_METADATA_KEYS: Final = 50
MAX_METADATA_KEY_LENGTH: Final = 40
MAX_METADATA_VALUE_LENGTH: Final = 500
MAX_EMAIL_LENGTH: Final = 800
MAX_IDEMPOTENCY_KEY_LENGTH: Final = 255

_TOP_FIELDS: Final = ("metadata", "options", "provided_details", "type")
_DOCUMENT_FIELDS: Final = (
    "allowed_types",
    "require_id_number",
    "require_live_capture",
    "require_matching_selfie",
)
_DOCUMENT_FLAGS: Final = _DOCUMENT_FIELDS[1:]
_DETAIL_FIELDS: Final = ("email", "phone")
_DOCUMENT_TYPES: Final[tuple[str, ...]] = get_args(DocumentType)
_VERIFICATION_TYPES: Final[tuple[str, ...]] = get_args(VerificationType)
_KEY_VERSION: Final = "v1"
# Enough of the namespace to read in Stripe's dashboard; the hash covers all of it.
_READABLE_NAMESPACE_LENGTH: Final = 100
_UNREADABLE = re.compile(r"[^A-Za-z0-9._:-]+")


# A Stripe account id: the one rule of the ``stripe_account`` column, ``--account``, the app
# API's account and a migration's ``select.account``.
_ACCOUNT: Final = re.compile(r"acct_[A-Za-z0-9]{1,250}")


def is_account_id(value: object) -> bool:
    """True for a Stripe account id: ``acct_`` and 1 to 250 letters or digits."""
    return isinstance(value, str) and _ACCOUNT.fullmatch(value) is not None


def check_account(value: str | None, label: str = "account") -> None:
    """InvalidUpdate (exit 2) unless ``value`` is None or a Stripe account id; ``label``
    names where it came from (``--account``, ...)."""
    if value is not None and not is_account_id(value):
        _fail(
            f"{label} {value!r} is not a Stripe account id (expected acct_ and letters/digits)",
            "account",
        )


def _fail(reason: str, field: str | None) -> NoReturn:
    raise InvalidUpdate(reason, field=field)


def _or_list(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _given(data: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> dict[str, Any]:
    """The fields of ``data`` that are not None, after refusing unknown ones."""
    for key in data:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            choices = _or_list(tuple(f"{path}.{a}" if path else a for a in allowed))
            _fail(f"Unknown field {where}: an update may only set {choices}.", where)
    return {key: value for key, value in data.items() if value is not None}


def _check_text(value: Any, what: str, field: str) -> str:
    if not isinstance(value, str):
        _fail(f"{what} must be a string, not {type(value).__name__}.", field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        _fail(f"{what} is not valid Unicode text.", field)
    return value


def _check_metadata(value: Any) -> dict[str, str] | Literal[""]:
    if value == "":
        return ""
    if not isinstance(value, Mapping):
        _fail('metadata must be an object of strings, or "" to unset all keys.', "metadata")
    given: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or len(key) > MAX_METADATA_KEY_LENGTH:
            _fail(f"Invalid key: {key} must be a string of at most 40 characters.", "metadata")
        if not key:
            _fail("Invalid key: metadata keys must not be empty.", "metadata")
        if "[" in key or "]" in key:
            _fail(f"Invalid key: {key} must not contain '[' or ']'.", "metadata")
        if key != key.strip():
            # CSV headers are trimmed: such a key could never come back from a failures file.
            # str.strip: spaces, tabs, no-break and line/paragraph separators alike.
            _fail(f"Invalid key: {key!r} must not start or end with whitespace.", "metadata")
        _check_text(key, "A metadata key", "metadata")
        if item is None:
            continue
        text = _check_text(item, 'A metadata value ("" unsets the key)', f"metadata.{key}")
        if len(text) > MAX_METADATA_VALUE_LENGTH:
            _fail(
                f"Metadata values can be up to 500 characters, but this one has {len(text)}.",
                f"metadata.{key}",
            )
        given[key] = text
    if not given:
        _fail('metadata sets no keys; use "" to unset all keys.', "metadata")
    # Stripe counts the keys an update sets; unsetting keys never breaks the limit.
    set_count = sum(1 for item in given.values() if item)
    if set_count > MAX_METADATA_KEYS:
        _fail(f"Metadata can have up to 50 keys, but you've set {set_count}.", "metadata")
    return given


def _check_allowed_types(value: Any) -> list[str]:
    field = "options.document.allowed_types"
    if not isinstance(value, (list, tuple)):
        _fail("allowed_types must be a list of document types.", field)
    if not value:
        # An empty list vanishes from the form encoding, so it could never reach Stripe.
        _fail("allowed_types must list at least one document type.", field)
    seen: list[str] = []
    for item in value:
        if item not in _DOCUMENT_TYPES:
            _fail(f"{item!r} is not a document type; use {_or_list(_DOCUMENT_TYPES)}.", field)
        if item in seen:
            _fail(f"allowed_types lists {item!r} twice.", field)
        seen.append(item)
    return seen


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DocumentOptions(_Frozen):
    """``options.document``: the fields to set; the ones left None are not touched."""

    allowed_types: tuple[DocumentType, ...] | None = None
    require_id_number: bool | None = None
    require_live_capture: bool | None = None
    require_matching_selfie: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _stripe_rules(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        given = _given(data, _DOCUMENT_FIELDS, "options.document")
        if not given:
            _fail(
                'options.document sets nothing; use "" to unset document options.',
                "options.document",
            )
        if "allowed_types" in given:
            given["allowed_types"] = _check_allowed_types(given["allowed_types"])
        for name in _DOCUMENT_FLAGS:
            if name in given and not isinstance(given[name], bool):
                _fail(f"{name} must be true or false.", f"options.document.{name}")
        return given


class UpdateOptions(_Frozen):
    """``options``: only ``document`` can be updated; ``""`` unsets the document options."""

    document: DocumentOptions | Literal[""] | None = None

    @model_validator(mode="before")
    @classmethod
    def _stripe_rules(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        given = _given(data, ("document",), "options")
        if not given:
            _fail("options sets nothing; give options.document.", "options")
        document = given["document"]
        if not (document == "" or isinstance(document, (Mapping, DocumentOptions))):
            _fail(
                'options.document must be an object, or "" to unset document options.',
                "options.document",
            )
        return given


class ProvidedDetails(_Frozen):
    """``provided_details``: the email and phone to set (neither can be unset)."""

    email: str | None = None
    phone: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _stripe_rules(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        given = _given(data, _DETAIL_FIELDS, "provided_details")
        if not given:
            _fail("provided_details sets nothing; give email or phone.", "provided_details")
        for name, value in given.items():
            field = f"provided_details.{name}"
            if not _check_text(value, name, field):
                _fail(f"{name} must not be empty.", field)
        length = len(given.get("email", ""))
        if length > MAX_EMAIL_LENGTH:
            reason = f"email can be up to 800 characters, but this one has {length}."
            _fail(reason, "provided_details.email")
        return given


@dataclass(frozen=True)
class FieldChange:
    """One field an update would change: dotted ``field``, value ``before`` and ``after``.

    ``None`` stands for "absent" (an unset metadata key, a detail never given).
    """

    field: str
    before: Any
    after: Any


class SessionUpdate(_Frozen):
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
        given = _given(data, _TOP_FIELDS, "")
        if not given:
            choices = _or_list(_TOP_FIELDS)
            _fail(f"The update changes nothing: set at least one of {choices}.", None)
        if "metadata" in given:
            given["metadata"] = _check_metadata(given["metadata"])
        for name, model in (("options", UpdateOptions), ("provided_details", ProvidedDetails)):
            if name in given and not isinstance(given[name], (Mapping, model)):
                _fail(f"{name} must be an object.", name)
        if "type" in given and given["type"] not in _VERIFICATION_TYPES:
            choices = _or_list(_VERIFICATION_TYPES)
            _fail(f"{given['type']!r} is not a verification type; use {choices}.", "type")
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
        found: list[FieldChange] = []
        metadata = session.get("metadata") or {}
        if self.metadata == "":
            if metadata:
                found.append(FieldChange("metadata", dict(metadata), {}))
        elif self.metadata is not None:
            for key, value in sorted(self.metadata.items()):
                before, after = metadata.get(key), value or None
                if before != after:
                    found.append(FieldChange(f"metadata.{key}", before, after))
        document = self.options.document if self.options is not None else None
        current = (session.get("options") or {}).get("document")
        if document == "":
            # A session model dumped to a dict may carry its absent fields as None.
            if current and any(value is not None for value in current.values()):
                found.append(FieldChange("options.document", current, {}))
        elif isinstance(document, DocumentOptions):
            wanted = document.model_dump(mode="json", exclude_none=True)
            for name, value in sorted(wanted.items()):
                before = (current or {}).get(name)
                if not _same(name, before, value):
                    found.append(FieldChange(f"options.document.{name}", before, value))
        if self.provided_details is not None:
            details = session.get("provided_details") or {}
            wanted = self.provided_details.model_dump(exclude_none=True)
            for name, value in sorted(wanted.items()):
                if details.get(name) != value:
                    found.append(FieldChange(f"provided_details.{name}", details.get(name), value))
        if self.type is not None and session.get("type") != self.type:
            found.append(FieldChange("type", session.get("type"), self.type))
        return found

    def is_satisfied_by(self, session: Mapping[str, Any]) -> bool:
        """True when ``session`` already has everything this update asks for (no changes)."""
        return not self.changes(session)


def _same(name: str, before: Any, after: Any) -> bool:
    if name == "allowed_types":
        return isinstance(before, list) and sorted(map(str, before)) == sorted(after)
    if name in _DOCUMENT_FLAGS:
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
        _fail(f"An update must be an object, not {type(data).__name__}.", None)
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
