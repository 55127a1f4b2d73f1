"""The doctor's judgments: key description, clock skew, persistence, exit code (pure)."""

from __future__ import annotations

from vsbatch.ops.doctor import Check, exit_code, key_check, persistence_check, skew_check

KEY = "sk_test_vsbatch0123456789abcdefSECRET"


class TestKeyCheck:
    def test_names_kind_and_mode_without_the_key(self) -> None:
        """A test secret key is ok and shown as its prefix only."""
        check = key_check(KEY, None)

        assert ("ok", "sk_test_…(redacted), secret key, test mode") == (check.level, check.detail)

    def test_a_live_restricted_key_warns(self) -> None:
        """A live key is a warning whose fix mentions --live."""
        check = key_check("rk_live_" + "a" * 24, None)

        assert ("warn", "rk_live_…(redacted), restricted key, live mode", True) == (
            check.level,
            check.detail,
            "--live" in check.fix,
        )

    def test_a_refused_destination_fails_with_the_reason_as_fix(self) -> None:
        """A key the base may not receive fails; the fix is the reason."""
        check = key_check(KEY, "not a Stripe host")

        assert ("fail", "not a Stripe host") == (check.level, check.fix)


class TestSkewCheck:
    def test_a_small_skew_is_ok(self) -> None:
        """Two seconds off is within the tolerance."""
        assert "ok" == skew_check("clock", 1002.0, 1000.0).level

    def test_a_large_skew_warns_saying_which_way(self) -> None:
        """A clock a minute behind warns and says "behind"."""
        check = skew_check("clock", 1000.0, 1060.0)

        assert ("warn", "the local clock is 60s behind it") == (check.level, check.detail)

    def test_the_remote_resolution_is_forgiven(self) -> None:
        """A skew within tolerance plus the remote clock's granularity is ok."""
        assert "ok" == skew_check("clock", 1005.4, 1000.0, resolution=0.5).level


class TestPersistenceCheck:
    def test_config_refused_and_info_refused_is_unknown(self) -> None:
        """A managed Redis refusing CONFIG and INFO gets "unknown", a warning."""
        check = persistence_check(None, None)

        assert ("warn", True) == (check.level, check.detail.startswith("unknown"))

    def test_info_answers_when_config_is_refused(self) -> None:
        """With CONFIG refused, INFO's aof_enabled decides."""
        assert "ok" == persistence_check(None, {"aof_enabled": 1}).level

    def test_aof_off_warns(self) -> None:
        """appendonly no is a warning whose fix turns AOF on."""
        check = persistence_check({"appendonly": "no"}, {"aof_enabled": 0})

        assert ("warn", True) == (check.level, "appendonly yes" in check.fix)


class TestExitCode:
    def test_exit_codes(self) -> None:
        """0 all ok, 1 a warning, 2 a failure (even beside warnings)."""
        ok, warn, fail = (Check("x", level, "") for level in ("ok", "warn", "fail"))  # type: ignore[arg-type]

        assert (0, 1, 2) == (exit_code([ok]), exit_code([ok, warn]), exit_code([warn, fail]))
