"""Form encoding: ours equals stripe-python's own encoder, pair for pair and in order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st
from stripe._encode import _api_encode

from tests.strategies import DOCUMENT_OPTIONS
from vsbatch.model.update import encode_form, parse_update

# Printable text, no brackets (metadata keys cannot hold them), no surrogates.
TEXT_CHARACTERS = st.characters(
    blacklist_categories=("Cs", "Cc"),
    blacklist_characters="[]",
)
METADATA = st.one_of(
    st.just(""),
    st.dictionaries(
        # Keys with spaces at either end are refused (a CSV header would trim them).
        keys=st.text(TEXT_CHARACTERS, min_size=1, max_size=40).filter(lambda k: k == k.strip()),
        values=st.text(TEXT_CHARACTERS, max_size=500),
        min_size=1,
        max_size=8,
    ),
)
DOCUMENT = st.one_of(st.just(""), DOCUMENT_OPTIONS.filter(bool))
DETAILS = st.fixed_dictionaries(
    {},
    optional={
        "email": st.text(TEXT_CHARACTERS, min_size=1, max_size=800),
        "phone": st.text(TEXT_CHARACTERS, min_size=1, max_size=20),
    },
).filter(bool)
UPDATES = st.fixed_dictionaries(
    {},
    optional={
        "metadata": METADATA,
        "options": st.fixed_dictionaries({"document": DOCUMENT}),
        "provided_details": DETAILS,
        "type": st.sampled_from(["document", "id_number"]),
    },
).filter(bool)

# Arbitrary nested params within what both encoders treat alike (no bool or None in lists).
SCALARS = st.one_of(st.text(TEXT_CHARACTERS, max_size=10), st.integers(), st.booleans())
NESTED = st.recursive(
    st.one_of(SCALARS, st.none()),
    lambda children: st.one_of(
        st.lists(
            st.one_of(
                st.text(max_size=5),
                st.integers(),
                st.dictionaries(st.text(TEXT_CHARACTERS, max_size=5), children, max_size=3),
            ),
            max_size=3,
        ),
        st.dictionaries(st.text(TEXT_CHARACTERS, max_size=5), children, max_size=3),
    ),
    max_leaves=12,
)


def stripe_pairs(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """stripe-python's pairs, after the str() that urlencode applies to every value."""
    return [(str(key), str(value)) for key, value in _api_encode(params)]


class TestFormEncoding:
    @settings(max_examples=200, deadline=None)
    @given(data=UPDATES)
    def test_update_form_matches_stripe_python(self, data: dict[str, Any]) -> None:
        """For any valid update, to_form equals stripe-python's encoding of to_params."""
        update = parse_update(data)

        assert stripe_pairs(update.to_params()) == update.to_form()

    @settings(max_examples=200, deadline=None)
    @given(data=UPDATES)
    def test_params_round_trip(self, data: dict[str, Any]) -> None:
        """Parsing an update's own params gives the same update back."""
        update = parse_update(data)

        assert update == parse_update(update.to_params())

    @settings(max_examples=200, deadline=None)
    @given(params=st.dictionaries(st.text(TEXT_CHARACTERS, max_size=5), NESTED, max_size=4))
    def test_nested_params_match_stripe_python(self, params: dict[str, Any]) -> None:
        """encode_form equals stripe-python for any nested dicts, lists and scalars."""
        assert stripe_pairs(params) == encode_form(params)

    def test_urlencoded_body(self) -> None:
        """The pairs urlencode to the body stripe-python sends, brackets escaped."""
        update = parse_update(
            {"options": {"document": {"allowed_types": ["passport", "id_card"]}}, "metadata": ""}
        )

        expected = (
            "metadata=&options%5Bdocument%5D%5Ballowed_types%5D%5B0%5D=passport"
            "&options%5Bdocument%5D%5Ballowed_types%5D%5B1%5D=id_card"
        )
        assert expected == urlencode(update.to_form())

    def test_none_dropped_and_booleans_lowercase(self) -> None:
        """None values vanish and booleans become true/false, as in stripe-python."""
        params = {"a": None, "b": {"c": True, "d": None}, "e": False}

        assert [("b[c]", "true"), ("e", "false")] == encode_form(params)

    def test_booleans_in_lists_lowercased(self) -> None:
        """Unlike stripe-python, a boolean inside a list is also sent as true/false."""
        assert [("flags[0]", "true"), ("flags[1]", "false")] == encode_form(
            {"flags": [True, False]}
        )
