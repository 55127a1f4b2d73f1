"""Stripe-shaped update examples (the wire form) that the update-model tests share."""

from __future__ import annotations

from typing import Any

WIRE_EXAMPLES: list[dict[str, Any]] = [
    {"metadata": {"k": "v", "old": ""}},
    {"metadata": ""},
    {"options": {"document": ""}},
    {"options": {"document": {"allowed_types": ["passport"], "require_matching_selfie": True}}},
    {"provided_details": {"email": "a@b.c", "phone": "+15555550100"}},
    {"type": "id_number"},
    {
        "metadata": {"a": "1"},
        "options": {"document": {"allowed_types": ["id_card", "passport"]}},
        "provided_details": {"email": "a@b.c"},
        "type": "document",
    },
]
