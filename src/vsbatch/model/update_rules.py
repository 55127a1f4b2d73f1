"""Stripe's rules for the fields of an update, as plain checks that raise InvalidUpdate.

This module owns what Stripe accepts in an "Update a VerificationSession" request, field by
field: the limits (metadata keys and values, email), the field names and enumerations
(:data:`DocumentType`, :data:`VerificationType`), the Stripe account id rule
(:func:`is_account_id`, :func:`check_account`), and the checks the update models run before
pydantic sees the data (:func:`given_fields`, :func:`check_text`, :func:`check_metadata`,
:func:`check_allowed_types`), each failing with :func:`fail`: an
:class:`~vsbatch.errors.InvalidUpdate` with a dotted field and a one-sentence reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, Literal, NoReturn, get_args

from vsbatch.errors import InvalidUpdate

__all__ = [
    "DETAIL_FIELDS",
    "DOCUMENT_FIELDS",
    "DOCUMENT_FLAGS",
    "DOCUMENT_TYPES",
    "MAX_EMAIL_LENGTH",
    "MAX_METADATA_KEYS",
    "MAX_METADATA_KEY_LENGTH",
    "MAX_METADATA_VALUE_LENGTH",
    "SECRET_KEY",
    "TOP_FIELDS",
    "VERIFICATION_TYPES",
    "DocumentType",
    "VerificationType",
    "check_account",
    "check_allowed_types",
    "check_metadata",
    "check_text",
    "fail",
    "given_fields",
    "holds_secret_key",
    "is_account_id",
    "or_list",
]

DocumentType = Literal["driving_license", "id_card", "passport"]
VerificationType = Literal["document", "id_number"]

MAX_METADATA_KEYS: Final = 50
MAX_METADATA_KEY_LENGTH: Final = 40
MAX_METADATA_VALUE_LENGTH: Final = 500
MAX_EMAIL_LENGTH: Final = 800

TOP_FIELDS: Final = ("metadata", "options", "provided_details", "type")
DOCUMENT_FIELDS: Final = (
    "allowed_types",
    "require_id_number",
    "require_live_capture",
    "require_matching_selfie",
)
DOCUMENT_FLAGS: Final = DOCUMENT_FIELDS[1:]
DETAIL_FIELDS: Final = ("email", "phone")
DOCUMENT_TYPES: Final[tuple[str, ...]] = get_args(DocumentType)
VERIFICATION_TYPES: Final[tuple[str, ...]] = get_args(VerificationType)


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
        fail(
            f"{label} {value!r} is not a Stripe account id (expected acct_ and letters/digits)",
            "account",
        )


# A Stripe secret or restricted key (``sk_``/``rk_``, test or live): never a value to send. A
# key pasted into a cell would reach Stripe (as metadata anyone with dashboard access reads),
# the ledger, the results store and every report; the row is refused instead.
SECRET_KEY: Final = re.compile(r"[sr]k_(?:live|test)_[0-9A-Za-z]{8,}")


def holds_secret_key(text: str) -> bool:
    """True when ``text`` holds something shaped like a Stripe secret or restricted key."""
    # The substring tests first: a million-row file pays two of them a cell, not a regex.
    return ("k_live_" in text or "k_test_" in text) and SECRET_KEY.search(text) is not None


def fail(reason: str, field: str | None) -> NoReturn:
    """Raise InvalidUpdate: ``reason`` in one sentence, at the dotted ``field`` (or None)."""
    raise InvalidUpdate(reason, field=field)


def or_list(names: tuple[str, ...]) -> str:
    """``"a, b or c"``: the names for a message."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def given_fields(data: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> dict[str, Any]:
    """The fields of ``data`` that are not None, after refusing unknown ones."""
    for key in data:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            choices = or_list(tuple(f"{path}.{a}" if path else a for a in allowed))
            fail(f"Unknown field {where}: an update may only set {choices}.", where)
    return {key: value for key, value in data.items() if value is not None}


def check_text(value: Any, what: str, field: str) -> str:
    """``value`` when it is a string of valid Unicode; InvalidUpdate at ``field`` otherwise."""
    if not isinstance(value, str):
        fail(f"{what} must be a string, not {type(value).__name__}.", field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        fail(f"{what} is not valid Unicode text.", field)
    if holds_secret_key(value):
        fail(
            f"{what} holds a Stripe secret key (sk_/rk_): remove it from the input;"
            " vsbatch never sends or stores a key.",
            field,
        )
    return value


def check_metadata(value: Any) -> dict[str, str] | Literal[""]:
    """The metadata to send: ``""`` (unset all) or the keys given, values ``""`` unsetting."""
    if value == "":
        return ""
    if not isinstance(value, Mapping):
        fail('metadata must be an object of strings, or "" to unset all keys.', "metadata")
    given: dict[str, str] = {}
    for key, item in value.items():
        _check_key(key)
        if item is not None:
            given[key] = _check_value(key, item)
    if not given:
        fail('metadata sets no keys; use "" to unset all keys.', "metadata")
    # Stripe counts the keys an update sets; unsetting keys never breaks the limit.
    set_count = sum(1 for item in given.values() if item)
    if set_count > MAX_METADATA_KEYS:
        fail(f"Metadata can have up to 50 keys, but you've set {set_count}.", "metadata")
    return given


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or len(key) > MAX_METADATA_KEY_LENGTH:
        fail(f"Invalid key: {key} must be a string of at most 40 characters.", "metadata")
    if not key:
        fail("Invalid key: metadata keys must not be empty.", "metadata")
    if "[" in key or "]" in key:
        fail(f"Invalid key: {key} must not contain '[' or ']'.", "metadata")
    if key != key.strip():
        # CSV headers are trimmed: such a key could never come back from a failures file.
        # str.strip: spaces, tabs, no-break and line/paragraph separators alike.
        fail(f"Invalid key: {key!r} must not start or end with whitespace.", "metadata")
    check_text(key, "A metadata key", "metadata")


def _check_value(key: str, item: Any) -> str:
    text = check_text(item, 'A metadata value ("" unsets the key)', f"metadata.{key}")
    if len(text) > MAX_METADATA_VALUE_LENGTH:
        fail(
            f"Metadata values can be up to 500 characters, but this one has {len(text)}.",
            f"metadata.{key}",
        )
    return text


def check_allowed_types(value: Any) -> list[str]:
    """The document types of ``allowed_types``: a non-empty list without repeats."""
    field = "options.document.allowed_types"
    if not isinstance(value, (list, tuple)):
        fail("allowed_types must be a list of document types.", field)
    if not value:
        # An empty list vanishes from the form encoding, so it could never reach Stripe.
        fail("allowed_types must list at least one document type.", field)
    seen: list[str] = []
    for item in value:
        if item not in DOCUMENT_TYPES:
            fail(f"{item!r} is not a document type; use {or_list(DOCUMENT_TYPES)}.", field)
        if item in seen:
            fail(f"allowed_types lists {item!r} twice.", field)
        seen.append(item)
    return seen
