"""The emulator's ``--fail-rate KIND=SHARE[,...]`` parser: a pure string-to-config-fields map."""

from __future__ import annotations

import pytest

from vsbatch.emulator.config import EmulatorConfig
from vsbatch.emulator.fault_spec import FAULT_KINDS, parse_fail_rate

VALID = "503, 500-after-apply, lock-timeout, hang, drop, gateway"


class TestParseFailRate:
    def test_the_issues_example_maps_to_config_fields(self) -> None:
        """``503=0.05,500-after-apply=0.01,hang=0.01`` sets the three matching shares."""
        actual = parse_fail_rate("503=0.05,500-after-apply=0.01,hang=0.01")

        assert {"fail_503_rate": 0.05, "fail_500_after_rate": 0.01, "hang_rate": 0.01} == actual

    def test_every_kind_names_a_share_field_of_the_config(self) -> None:
        """Each kind maps to an EmulatorConfig field, and the config accepts a share for it."""
        spec = ",".join(f"{kind}=0.1" for kind in FAULT_KINDS)

        config = EmulatorConfig.model_validate(parse_fail_rate(spec))

        assert [0.1] * len(FAULT_KINDS) == [getattr(config, f) for f in FAULT_KINDS.values()]

    def test_spaces_and_percentages_are_accepted(self) -> None:
        """Blanks around items are ignored and ``5%`` means 0.05."""
        actual = parse_fail_rate(" 503 = 5% , drop=0.5 ")

        assert {"fail_503_rate": 0.05, "drop_rate": 0.5} == actual

    def test_an_unknown_kind_is_named_with_the_valid_kinds(self) -> None:
        """An unknown kind is refused with the bad item and the list of valid kinds."""
        with pytest.raises(ValueError) as caught:
            parse_fail_rate("503=0.05,teapot=0.1")

        assert (f"unknown kind 'teapot' in 'teapot=0.1'; valid kinds: {VALID}") == str(caught.value)

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ("503", f"'503' is not KIND=SHARE; valid kinds: {VALID}"),
            ("503=", "share '' of '503=' is not a number in 0..1 (or 0%..100%)"),
            ("503=abc", "share 'abc' of '503=abc' is not a number in 0..1 (or 0%..100%)"),
            ("503=1.5", "share '1.5' of '503=1.5' is not a number in 0..1 (or 0%..100%)"),
            ("503=-0.1", "share '-0.1' of '503=-0.1' is not a number in 0..1 (or 0%..100%)"),
            ("503=nan", "share 'nan' of '503=nan' is not a number in 0..1 (or 0%..100%)"),
            ("503=0.1,,hang=0.1", "empty item between commas"),
            ("503=0.1,503=0.2", "kind '503' is given twice"),
            ("503=0.6,hang=0.5", "the shares add up to 1.1; at most 1 (one fault per request)"),
            ("", "empty: give KIND=SHARE[,KIND=SHARE...]"),
        ],
    )
    def test_a_malformed_spec_is_refused_naming_the_bad_part(self, spec: str, message: str) -> None:
        """A malformed item, share or total is refused with a message naming it."""
        with pytest.raises(ValueError) as caught:
            parse_fail_rate(spec)

        assert message == str(caught.value)
