"""Unit tests of the emulator's form decoding and parameter tables (no sockets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vsbatch.emulator import UPDATE_PARAMETERS
from vsbatch.emulator.forms import ParamError, parse_pairs, validate

SPEC_COPY = Path(__file__).parent.parent / "data" / "openapi_update.json"
_KEPT = ("type", "enum", "properties", "items", "anyOf", "additionalProperties")


def _shape(schema: Any) -> Any:
    """Keep only what decides validity: types, enums and structure (no titles, docs, limits)."""
    if isinstance(schema, list):
        return [_shape(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    kept = {key: schema[key] for key in _KEPT if key in schema}
    for key in ("properties",):
        if key in kept:
            kept[key] = {name: _shape(sub) for name, sub in kept[key].items()}
    for key in ("items", "additionalProperties", "anyOf"):
        if key in kept:
            kept[key] = _shape(kept[key])
    return kept


def _spec_properties() -> dict[str, Any]:
    body = json.loads(SPEC_COPY.read_text())["requestBody"]
    schema = body["content"]["application/x-www-form-urlencoded"]["schema"]
    return {name: _shape(sub) for name, sub in schema["properties"].items()}


class TestParameterTable:
    """The emulator accepts exactly the update parameters of Stripe's spec."""

    def test_update_parameters_match_the_openapi_update_operation(self) -> None:
        """Names, types, enums and nesting of UPDATE_PARAMETERS equal the spec's request body."""
        expected = _spec_properties()

        actual = {name: _shape(sub) for name, sub in UPDATE_PARAMETERS.items()}

        assert expected == actual

    def test_spec_copy_forbids_other_parameters(self) -> None:
        """The spec's update body has additionalProperties false, hence parameter_unknown."""
        body = json.loads(SPEC_COPY.read_text())["requestBody"]

        actual = body["content"]["application/x-www-form-urlencoded"]["schema"]

        assert False is actual["additionalProperties"]


class TestParsePairs:
    """Literal brackets nest; indexed and [] arrays stay index-keyed until validated."""

    def test_nests_bracketed_keys(self) -> None:
        """``a[b][c]=v`` becomes nested dicts."""
        actual = parse_pairs([("options[document][require_id_number]", "true")])

        assert {"options": {"document": {"require_id_number": "true"}}} == actual

    def test_empty_brackets_append(self) -> None:
        """``a[]=x&a[]=y`` numbers the items in order."""
        actual = parse_pairs([("expand[]", "x"), ("expand[]", "y")])

        assert {"expand": {"0": "x", "1": "y"}} == actual

    def test_unbalanced_brackets_are_an_unknown_parameter(self) -> None:
        """A key like ``foo[bar`` names no parameter."""
        with pytest.raises(ParamError) as caught:
            parse_pairs([("foo[bar", "1")])

        assert ("parameter_unknown", "foo[bar") == (caught.value.code, caught.value.param)


class TestValidate:
    """Validation normalises values and names the failing parameter as Stripe does."""

    def test_normalises_booleans_and_indexed_arrays(self) -> None:
        """``true`` becomes True and ``[1]``/``[0]`` become a list in index order."""
        params = parse_pairs(
            [
                ("options[document][allowed_types][1]", "id_card"),
                ("options[document][allowed_types][0]", "passport"),
                ("options[document][require_live_capture]", "false"),
            ]
        )

        actual = validate(UPDATE_PARAMETERS, params)

        expected = {
            "options": {
                "document": {
                    "allowed_types": ["passport", "id_card"],
                    "require_live_capture": False,
                }
            }
        }
        assert expected == actual

    @pytest.mark.parametrize(
        ("pairs", "code", "param"),
        [
            ([("foo", "1")], "parameter_unknown", "foo"),
            ([("options[document][foo]", "1")], "parameter_unknown", "options[document][foo]"),
            ([("type", "selfie")], "parameter_invalid_string", "type"),
            (
                [("options[document][require_id_number]", "yes")],
                "parameter_invalid_boolean",
                "options[document][require_id_number]",
            ),
            (
                [("options[document][allowed_types][0]", "visa")],
                "parameter_invalid_string",
                "options[document][allowed_types][0]",
            ),
            ([("provided_details", "")], "parameter_invalid_empty", "provided_details"),
            (
                [("provided_details[email]", "")],
                "parameter_invalid_empty",
                "provided_details[email]",
            ),
            ([("type", "")], "parameter_invalid_empty", "type"),
        ],
    )
    def test_refuses_with_code_and_param(
        self, pairs: list[tuple[str, str]], code: str, param: str
    ) -> None:
        """Each malformed parameter is refused with its code and bracketed name."""
        with pytest.raises(ParamError) as caught:
            validate(UPDATE_PARAMETERS, parse_pairs(pairs))

        assert (code, param) == (caught.value.code, caught.value.param)

    def test_empty_string_unsets_metadata_and_document_options(self) -> None:
        """``metadata=`` and ``options[document]=`` pass through as "" (unset)."""
        params = parse_pairs([("metadata", ""), ("options[document]", "")])

        actual = validate(UPDATE_PARAMETERS, params)

        assert {"metadata": "", "options": {"document": ""}} == actual
