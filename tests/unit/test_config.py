"""Settings: environment names, the key never shown, the default rate limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from vsbatch.config import Settings, load_settings
from vsbatch.errors import ConfigError
from vsbatch.stripe.destination import check_destination


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
        """Test keys default to 25/s less one request a second (no live traffic to leave
        room for), live keys to 80 % of the 25/s one endpoint may take (the account's
        100/s is not the binding limit for updates, which all go to one endpoint)."""
        test = Settings(stripe_api_key="sk_test_x", _env_file=None).effective_rate_limit
        live = Settings(stripe_api_key="sk_live_x", _env_file=None).effective_rate_limit

        assert (24.0, 20.0) == (test, live)

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
        from vsbatch.intake.chunks import chunk_size

        assert (4, 1, 100) == (chunk_size(1000, 100), chunk_size(3, 100), chunk_size(10**6, 100))


SECRET_KEY = "sk_test_abc0123456789SECRET"


class TestKeyShape:
    @pytest.mark.parametrize("raw", [f" {SECRET_KEY}", f"{SECRET_KEY}\n", f"\t{SECRET_KEY} \r\n"])
    def test_surrounding_whitespace_is_stripped(self, raw: str) -> None:
        """A key pasted with spaces or a newline is used without them."""
        settings = Settings(stripe_api_key=raw, _env_file=None)

        assert settings.stripe_api_key is not None
        assert SECRET_KEY == settings.stripe_api_key.get_secret_value()

    def test_leading_space_does_not_defeat_the_live_check(self) -> None:
        """`` sk_live_...`` is a live key."""
        settings = Settings(stripe_api_key=" sk_live_abc0123", _env_file=None)

        assert True is settings.is_live_key

    @pytest.mark.parametrize(
        ("key", "expected"),
        [
            ("pk_test_abc0123SECRET", "publishable key"),
            ("pk_live_abc0123SECRET", "publishable key"),
            ("sk_test_abc 0123SECRET", "expected sk_test_"),
            ("sk_test_abc\n0123SECRET", "expected sk_test_"),
            ("Bearer sk_test_abcSECRET", "expected sk_test_"),
            ("sk_prod_abc0123SECRET", "expected sk_test_"),
        ],
        ids=["pk-test", "pk-live", "inner-space", "inner-newline", "bearer", "unknown-mode"],
    )
    def test_malformed_key_is_one_config_error_without_the_key(
        self, monkeypatch: pytest.MonkeyPatch, key: str, expected: str
    ) -> None:
        """A key of the wrong shape is refused when settings load, naming the variable only."""
        monkeypatch.setenv("STRIPE_API_KEY", key)

        with pytest.raises(ConfigError) as caught:
            load_settings(_env_file=None)

        message = str(caught.value)
        assert message.startswith("invalid setting VSBATCH_STRIPE_API_KEY: "), message
        assert expected in message
        assert "SECRET" not in message


class TestDestination:
    def test_live_key_refused_for_a_dotenv_http_base(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A .env naming an http base with VSBATCH_LIVE=true does not get the live key."""
        env_file = tmp_path / ".env"
        env_file.write_text(
            "VSBATCH_STRIPE_API_BASE=http://attacker.example\nVSBATCH_LIVE=true\n"
            "VSBATCH_STRIPE_API_BASE_ALLOW=http://attacker.example\n",
            encoding="utf-8",
        )
        monkeypatch.setenv("VSBATCH_STRIPE_API_KEY", "sk_live_abc0123SECRET")
        settings = Settings(_env_file=env_file)

        with pytest.raises(ConfigError, match="live-mode key is sent only to"):
            settings.require_api_key()

    def test_allow_list_is_not_read_from_dotenv(self, tmp_path: Path) -> None:
        """VSBATCH_STRIPE_API_BASE_ALLOW in .env is ignored; in the environment it counts."""
        env_file = tmp_path / ".env"
        env_file.write_text("VSBATCH_STRIPE_API_BASE_ALLOW=https://proxy.example\n", "utf-8")

        assert "" == Settings(_env_file=env_file).stripe_api_base_allow

    def test_live_key_goes_to_an_allow_listed_https_base(self) -> None:
        """An https base named in the allow-list is trusted with a live key."""
        settings = Settings(
            _env_file=None,
            stripe_api_key="sk_live_abc0123SECRET",
            stripe_api_base="https://proxy.example/",
            stripe_api_base_allow="https://other.example, https://proxy.example",
        )

        assert "sk_live_abc0123SECRET" == settings.require_api_key()

    @pytest.mark.parametrize(
        ("base", "live", "ok"),
        [
            ("https://api.stripe.com", True, True),
            ("https://api.stripe.com.attacker.example", True, False),
            ("http://api.stripe.com", True, False),
            ("http://127.0.0.1:12111", True, False),
            ("https://staging.example", False, True),
            ("http://127.0.0.1:12111", False, True),
            ("http://[::1]:12111", False, True),
            ("http://10.1.2.3:12111", False, True),
            ("http://192.168.0.7", False, True),
            ("http://8.8.8.8", False, False),
            ("http://emulator:12111", False, True),
            ("http://public.example", False, False),
            ("http://unresolvable.invalid", False, False),
            ("https://user:pw@api.stripe.com", True, False),
        ],
    )
    def test_destination_rule(self, base: str, live: bool, ok: bool) -> None:
        """Live keys: api.stripe.com over https; test keys: https, or http to private hosts."""
        names = {"emulator": ["172.18.0.5"], "public.example": ["93.184.215.14"]}

        try:
            check_destination(base, live=live, resolve=lambda host: names.get(host, []))
            refused = False
        except ConfigError as exc:
            refused = True
            assert "pw" not in str(exc)

        assert ok is not refused

    def test_unresolvable_emulator_host_is_named(self) -> None:
        """An http host that does not resolve is reported as such, not as a public host."""
        with pytest.raises(ConfigError, match="cannot resolve emulator"):
            check_destination("http://emulator:12111", live=False, resolve=lambda _host: [])
