"""The nested models of an update: ``options``, ``options.document`` and ``provided_details``.

This module owns :class:`DocumentOptions`, :class:`UpdateOptions` and :class:`ProvidedDetails`
(frozen pydantic models that apply Stripe's rules of :mod:`vsbatch.model.update_rules` before
pydantic sees the data) and :class:`Frozen`, the base they share with
:class:`~vsbatch.model.update.SessionUpdate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from vsbatch.model.update_rules import (
    DETAIL_FIELDS,
    DOCUMENT_FIELDS,
    DOCUMENT_FLAGS,
    MAX_EMAIL_LENGTH,
    DocumentType,
    check_allowed_types,
    check_text,
    fail,
    given_fields,
)

__all__ = ["DocumentOptions", "Frozen", "ProvidedDetails", "UpdateOptions"]


class Frozen(BaseModel):
    """An immutable model that refuses unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class DocumentOptions(Frozen):
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
        given = given_fields(data, DOCUMENT_FIELDS, "options.document")
        if not given:
            fail(
                'options.document sets nothing; use "" to unset document options.',
                "options.document",
            )
        if "allowed_types" in given:
            given["allowed_types"] = check_allowed_types(given["allowed_types"])
        for name in DOCUMENT_FLAGS:
            if name in given and not isinstance(given[name], bool):
                fail(f"{name} must be true or false.", f"options.document.{name}")
        return given


class UpdateOptions(Frozen):
    """``options``: only ``document`` can be updated; ``""`` unsets the document options."""

    document: DocumentOptions | Literal[""] | None = None

    @model_validator(mode="before")
    @classmethod
    def _stripe_rules(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        given = given_fields(data, ("document",), "options")
        if not given:
            fail("options sets nothing; give options.document.", "options")
        document = given["document"]
        if not (document == "" or isinstance(document, (Mapping, DocumentOptions))):
            fail(
                'options.document must be an object, or "" to unset document options.',
                "options.document",
            )
        return given


class ProvidedDetails(Frozen):
    """``provided_details``: the email and phone to set (neither can be unset)."""

    email: str | None = None
    phone: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _stripe_rules(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        given = given_fields(data, DETAIL_FIELDS, "provided_details")
        if not given:
            fail("provided_details sets nothing; give email or phone.", "provided_details")
        for name, value in given.items():
            field = f"provided_details.{name}"
            if not check_text(value, name, field):
                fail(f"{name} must not be empty.", field)
        length = len(given.get("email", ""))
        if length > MAX_EMAIL_LENGTH:
            reason = f"email can be up to 800 characters, but this one has {length}."
            fail(reason, "provided_details.email")
        return given
