"""Settings refused at load with one line naming the variable (issue 11 item 5)."""

from __future__ import annotations

import pytest

from vsbatch.config import load_settings
from vsbatch.errors import ConfigError


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VSBATCH_RATE_LIMIT", "inf"),
        ("VSBATCH_RETRY_MAX_SECONDS", "1e400"),
        ("VSBATCH_HTTP_TIMEOUT", "nan"),
        ("VSBATCH_LOG_LEVEL", "LOUD"),
        ("VSBATCH_STRIPE_API_BASE", "http://[::1"),
        ("VSBATCH_STRIPE_API_BASE", "ftp://api.stripe.com"),
    ],
)
def test_bad_setting_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """A non-finite number, an unknown log level or a malformed API base is one ConfigError
    that names the variable as the user spells it."""
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)

    assert f"invalid setting {variable}:" in str(caught.value)


def test_log_level_any_case_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A known log level in lower case is accepted as that level."""
    monkeypatch.setenv("VSBATCH_LOG_LEVEL", "warning")

    assert "WARNING" == load_settings(_env_file=None).log_level
