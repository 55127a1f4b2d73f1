"""The ``--fail-rate KIND=SHARE[,KIND=SHARE...]`` mini-language of the emulator's command lines.

Pure string handling, no pydantic: ``vsbatch --help`` imports this module (through the
``emulator`` sub-app) and must stay light. The kinds name what the client sees; each maps to one
share field of :class:`~vsbatch.emulator.config.EmulatorConfig`.
"""

from __future__ import annotations

import math

__all__ = ["FAULT_KINDS", "parse_fail_rate"]

FAULT_KINDS: dict[str, str] = {
    "503": "fail_503_rate",
    "500-after-apply": "fail_500_after_rate",
    "lock-timeout": "lock_timeout_rate",
    "hang": "hang_rate",
    "drop": "drop_rate",
    "gateway": "gateway_rate",
}
"""``--fail-rate`` kind (what the client sees) -> EmulatorConfig share field."""

_VALID = "valid kinds: " + ", ".join(FAULT_KINDS)


def _share(text: str, item: str) -> float:
    """``0.05`` or ``5%`` as a share in 0..1."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise ValueError(f"share {text!r} of {item!r} is not a number in 0..1 (or 0%..100%)")
    return value


def parse_fail_rate(spec: str) -> dict[str, float]:
    """Parse ``503=0.05,500-after-apply=0.01,hang=0.01`` into EmulatorConfig share fields.

    Args:
        spec: Comma-separated ``KIND=SHARE`` items; a share is ``0..1`` or a percentage.

    Returns:
        ``{field: share}``, e.g. ``{"fail_503_rate": 0.05, ...}``.

    Raises:
        ValueError: One line naming the bad item (an unknown kind lists the valid ones).
    """
    if not spec.strip():
        raise ValueError("empty: give KIND=SHARE[,KIND=SHARE...]")
    fields: dict[str, float] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            raise ValueError("empty item between commas")
        kind, sep, share = (part.strip() for part in item.partition("="))
        if not sep:
            raise ValueError(f"{item!r} is not KIND=SHARE; {_VALID}")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown kind {kind!r} in {item!r}; {_VALID}")
        field = FAULT_KINDS[kind]
        if field in fields:
            raise ValueError(f"kind {kind!r} is given twice")
        fields[field] = _share(share, item)
    total = sum(fields.values())
    # One uniform draw picks at most one fault per request, so the shares cannot exceed 1.
    if total > 1.0 + 1e-9:
        raise ValueError(f"the shares add up to {total:g}; at most 1 (one fault per request)")
    return fields
