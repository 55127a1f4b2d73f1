"""Settings: the one frozen configuration object, read from the environment and ``.env``.

Built once (by the CLI or :func:`vsbatch.bootstrap.bootstrap`) and passed down; nothing else
reads the environment. Every variable is documented in the README's Configuration section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vsbatch.errors import ConfigError

STRIPE_API_BASE = "https://api.stripe.com"
STRIPE_VERSION = "2026-07-29.dahlia"
# Stripe's published per-account limits; vsbatch defaults to a share of them so that the
# account's live traffic still gets through while a batch runs.
STRIPE_LIMIT_TEST = 25.0
STRIPE_LIMIT_LIVE = 100.0
DEFAULT_SHARE = 0.8

LogFormat = Literal["auto", "json", "text"]


class Settings(BaseSettings):
    """All of vsbatch's configuration (env prefix ``VSBATCH_``)."""

    model_config = SettingsConfigDict(
        env_prefix="VSBATCH_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        env_ignore_empty=True,  # ``VSBATCH_RATE_LIMIT=`` (compose, .env) means the default
    )

    stripe_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("VSBATCH_STRIPE_API_KEY", "STRIPE_API_KEY", "stripe_api_key"),
    )
    stripe_api_base: str = STRIPE_API_BASE
    stripe_version: str = STRIPE_VERSION
    redis_url: str | None = None
    data_dir: Path = Path(".vsbatch")

    http_connect_timeout: float = Field(default=5.0, gt=0)
    http_timeout: float = Field(default=20.0, gt=0)
    max_attempts: int = Field(default=6, ge=1)
    retry_max_seconds: float = Field(default=60.0, gt=0)
    retry_initial_wait: float = Field(default=0.5, ge=0)
    retry_max_wait: float = Field(default=8.0, ge=0)

    rate_limit: float | None = Field(default=None, gt=0)
    concurrency: int = Field(default=16, ge=1)
    chunk_size: int = Field(default=100, ge=1, le=10_000)  # messages.MAX_CHUNK_ROWS
    visibility_timeout: int = Field(default=600, ge=10)
    session_lock_ttl: float = Field(default=120.0, gt=0)
    heartbeat_seconds: float = Field(default=5.0, ge=0.1)
    ledger_retention_days: float = Field(default=30.0, gt=0)
    live: bool = False

    log_format: LogFormat = "auto"
    log_level: str = "INFO"
    redact_pii: bool = False
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 in containers, so that Prometheus can scrape
    migrations_file: Path = Path("migrations.toml")
    migration_min_interval: int = Field(default=60, ge=1)  # shortest schedule interval (s)

    @field_validator("stripe_api_base")
    @classmethod
    def _strip_base(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def is_live_key(self) -> bool:
        """True for ``sk_live_``/``rk_live_`` keys."""
        key = self.stripe_api_key.get_secret_value() if self.stripe_api_key else ""
        return "_live_" in key[:8]

    @property
    def effective_rate_limit(self) -> float:
        """Requests per second per Stripe account: the setting, or a safe share of Stripe's."""
        if self.rate_limit is not None:
            return self.rate_limit
        limit = STRIPE_LIMIT_LIVE if self.is_live_key else STRIPE_LIMIT_TEST
        return limit * DEFAULT_SHARE

    def require_api_key(self) -> str:
        """The key's value, or a ConfigError that names the variable to set."""
        if self.stripe_api_key is None or not self.stripe_api_key.get_secret_value():
            raise ConfigError("no Stripe API key: set VSBATCH_STRIPE_API_KEY (or STRIPE_API_KEY)")
        return self.stripe_api_key.get_secret_value()


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, turning validation errors into one ConfigError."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"invalid setting VSBATCH_{where.upper()}: {first['msg']}") from None
