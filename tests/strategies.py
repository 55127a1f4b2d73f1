"""Hypothesis strategies the property tests share: the shapes of a Stripe update."""

from __future__ import annotations

from hypothesis import strategies as st

# ``options.document`` with any subset of its fields (the empty one included).
DOCUMENT_OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "allowed_types": st.lists(
            st.sampled_from(["driving_license", "id_card", "passport"]),
            min_size=1,
            max_size=3,
            unique=True,
        ),
        "require_id_number": st.booleans(),
        "require_live_capture": st.booleans(),
        "require_matching_selfie": st.booleans(),
    },
)
