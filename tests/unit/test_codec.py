"""The stored form of an update in a row record: short keys, read back in canonical order."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import DOCUMENT_OPTIONS
from vsbatch.store.codec import compact_json, pack_params, params_json, unpack_params

TEXT = st.text(max_size=8)
# Updates of every valid shape, their parts and keys in any order.
VALID = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.one_of(st.just(""), st.dictionaries(TEXT, TEXT, min_size=1, max_size=3)),
        "options": st.fixed_dictionaries(
            {"document": st.one_of(st.just(""), DOCUMENT_OPTIONS.filter(bool))}
        ),
        "provided_details": st.fixed_dictionaries(
            {}, optional={"email": TEXT, "phone": TEXT}
        ).filter(bool),
        "type": st.sampled_from(["document", "id_number"]),
    },
).filter(bool)
# Shapes no validated update has: the stored form must still give them back.
ODD = st.dictionaries(
    st.sampled_from(["metadata", "options", "provided_details", "type", "other"]),
    st.one_of(
        st.none(),
        st.integers(),
        TEXT,
        st.dictionaries(TEXT, st.one_of(TEXT, st.integers(), st.booleans()), max_size=2),
        st.fixed_dictionaries({"document": st.dictionaries(TEXT, st.booleans(), max_size=2)}),
    ),
    min_size=1,
    max_size=3,
)


def canonical(params: dict[str, Any]) -> dict[str, Any]:
    """The params with keys sorted at every level (what SessionUpdate.to_params gives)."""
    if not isinstance(params, dict):
        return params
    return {key: canonical(params[key]) for key in sorted(params)}


class TestStoredParams:
    @settings(max_examples=300, deadline=None)
    @given(st.one_of(VALID, ODD))
    def test_written_directly_as_packed(self, params: dict[str, Any]) -> None:
        """params_json writes exactly what packing and encoding write, for any shape."""
        assert compact_json(pack_params(params)) == params_json(params)

    @settings(max_examples=300, deadline=None)
    @given(VALID)
    def test_read_back_canonical(self, params: dict[str, Any]) -> None:
        """A valid update's stored form reads back as its canonical params, whatever order
        the record's JSON was rewritten in."""
        stored = json.loads(params_json(params))
        reordered = {key: stored[key] for key in reversed(list(stored))}

        assert json.dumps(canonical(params)) == json.dumps(unpack_params(reordered))

    def test_stored_form_is_short(self) -> None:
        """The benchmark's update is stored in 35 characters (82 as Stripe's JSON)."""
        params = {"metadata": {"bench": "r1"}}
        params["options"] = {"document": {"require_matching_selfie": True}}

        assert '{"m":{"bench":"r1"},"D":{"s":true}}' == params_json(params)

    def test_earlier_json_text_reads_back(self) -> None:
        """Params stored as JSON text (by earlier versions) read back as they were."""
        assert {"type": "document"} == unpack_params('{"type":"document"}')
