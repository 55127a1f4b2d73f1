"""Settings: environment names, the key never shown, the default rate limit."""

from __future__ import annotations

import pytest

from vsbatch.config import Settings, load_settings
from vsbatch.errors import ConfigError


class TestSettings:
    def test_stripe_api_key_read_from_either_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """STRIPE_API_KEY works when VSBATCH_STRIPE_API_KEY is unset."""
        monkeypatch.setenv("STRIPE_API_KEY", "sk_test_abc")

        settings = Settings(_env_file=None)

        assert settings.stripe_api_key is not None
        assert "sk_test_abc" == settings.stripe_api_key.get_secret_value()

    def test_key_never_in_repr(self) -> None:
        """The key does not appear in the settings' repr."""
        settings = Settings(stripe_api_key="sk_test_supersecret", _env_file=None)

        assert "supersecret" not in repr(settings)

    def test_default_rate_limit_is_a_share_of_stripes(self) -> None:
        """Test keys default to 80 % of 25/s, live keys to 80 % of 100/s."""
        assert 20.0 == Settings(stripe_api_key="sk_test_x", _env_file=None).effective_rate_limit
        assert 80.0 == Settings(stripe_api_key="sk_live_x", _env_file=None).effective_rate_limit

    def test_bad_value_is_one_config_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A malformed variable becomes a ConfigError naming it."""
        monkeypatch.setenv("VSBATCH_CONCURRENCY", "many")

        with pytest.raises(ConfigError, match="VSBATCH_CONCURRENCY"):
            load_settings(_env_file=None)

    def test_missing_key_names_the_variable(self) -> None:
        """require_api_key says which variable to set."""
        with pytest.raises(ConfigError, match="VSBATCH_STRIPE_API_KEY"):
            Settings(_env_file=None).require_api_key()


class TestChunkSize:
    def test_small_batches_are_cut_fine(self) -> None:
        """A 1,000-row batch is spread over enough messages to keep many threads busy."""
        from vsbatch.submit import chunk_size

        assert (4, 1, 100) == (chunk_size(1000, 100), chunk_size(3, 100), chunk_size(10**6, 100))
