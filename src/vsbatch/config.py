"""Settings: the one frozen configuration object, read from the environment and ``.env``.

Built once (by the CLI or :func:`vsbatch.bootstrap.bootstrap`) and passed down; nothing else
reads the environment. Every variable is documented in the README's Configuration section.
``Settings(...)`` reads its sources itself (:mod:`vsbatch.config_sources`: given values >
environment > ``.env`` > defaults); ``_env_file=None`` reads no ``.env`` (tests).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from vsbatch.config_sources import DEFAULT_ENV_FILE, gather
from vsbatch.errors import ConfigError
from vsbatch.store.keys import check_key_prefix
from vsbatch.store.redis_url import is_sentinel_url, normalize_broker_url, normalize_redis_url
from vsbatch.stripe.destination import STRIPE_API_BASE as STRIPE_API_BASE
from vsbatch.stripe.destination import check_destination

STRIPE_VERSION = "2026-07-29.dahlia"
# Stripe's published per-account limits, and the share of them vsbatch takes by default.
# Live: 80 % of what one endpoint may take, so that the account's live traffic still gets
# through while a batch runs (Stripe's advice for background jobs): every update goes to one
# endpoint, and besides 100/s per live account Stripe limits each endpoint to 25/s by default,
# so 80 % of the account's 100/s would draw 429s from the endpoint's limit: 20/s. Test: the
# limit less one request a second (24/s): no customer traffic shares it, and Stripe counts a
# sliding second, so evenly spaced sends at 24/s leave 42 ms for the sends' jitter before a
# second holds 26 (at 25/s: none).
STRIPE_LIMIT_TEST = 25.0
STRIPE_LIMIT_LIVE = 100.0
STRIPE_LIMIT_ENDPOINT = 25.0
DEFAULT_SHARE_LIVE = 0.8
DEFAULT_SHARE_TEST = 0.96

RESULTS_SQLITE = "results.sqlite3"  # the results store's file in the data directory

LogFormat = Literal["auto", "json", "text"]
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Secret (sk_) and restricted (rk_) keys, test or live: what Stripe issues, nothing else.
_KEY_SHAPE = re.compile(r"[sr]k_(?:test|live)_[A-Za-z0-9_]{1,240}")
ENV_PREFIX = "VSBATCH_"
# Settings a ``.env`` file in the working directory may not set: they widen where the key goes.
_NOT_FROM_DOTENV = ("stripe_api_base_allow",)


def _key_problem(key: str) -> str | None:
    """Why a key cannot be a usable secret/restricted key (never quoting it), or None."""
    if key.startswith("pk_"):
        return "a publishable key (pk_) cannot update sessions: use a secret or restricted key"
    if not _KEY_SHAPE.fullmatch(key):
        return "expected sk_test_, sk_live_, rk_test_ or rk_live_ followed by letters and digits"
    return None


class Settings(BaseModel):
    """All of vsbatch's configuration (env prefix ``VSBATCH_``).

    Args:
        _env_file: The ``.env`` file to read (default: the working directory's); None: none.
        **values: Settings by field name (or alias); they win over the environment.
    """

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        allow_inf_nan=False,  # ``inf``, ``nan`` and ``1e400`` are no rate, timeout or budget
    )

    stripe_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("VSBATCH_STRIPE_API_KEY", "STRIPE_API_KEY", "stripe_api_key"),
    )
    # A file holding the key (a container secret): read once here, stripped, never logged.
    stripe_api_key_file: Path | None = None
    stripe_api_base: str = STRIPE_API_BASE
    stripe_api_base_allow: str = ""  # comma-separated https bases trusted with a live key
    stripe_version: str = STRIPE_VERSION
    redis_url: str | None = None
    redis_sentinel_master: str | None = None  # the monitored master's name (sentinel:// URLs)
    redis_sentinel_password: SecretStr | None = None  # the sentinels' own password, if any
    broker_url: str | None = None  # Celery's broker; None: the ledger's Redis (redis_url)
    key_prefix: str = "vsbatch"  # every ledger key's namespace; "{vsbatch}" for Redis Cluster
    data_dir: Path = Path(".vsbatch")

    http_connect_timeout: float = Field(default=5.0, gt=0)
    http_timeout: float = Field(default=20.0, gt=0)
    max_attempts: int = Field(default=6, ge=1)
    retry_max_seconds: float = Field(default=60.0, gt=0)
    retry_initial_wait: float = Field(default=0.5, ge=0)
    retry_max_wait: float = Field(default=8.0, ge=0)

    rate_limit: float | None = Field(default=None, gt=0)
    concurrency: int | None = Field(default=None, ge=1)  # None: sized (``sizing``)
    chunk_size: int = Field(default=100, ge=1, le=10_000)  # messages.MAX_CHUNK_ROWS
    visibility_timeout: int = Field(default=600, ge=10)
    session_lock_ttl: float = Field(default=120.0, gt=0)
    heartbeat_seconds: float = Field(default=5.0, ge=0.1)
    ledger_retention_days: float = Field(default=30.0, gt=0)
    # The SQL results store (``vsbatch.results``): None is SQLite in the data directory.
    results_url: str | None = None
    archive: bool = True  # workers (and ``run``) copy finished batches to the results store
    # A batch archived whole leaves Redis this long after (when sooner than the retention).
    archived_retention_days: float = Field(default=7.0, gt=0)
    live: bool = False

    log_format: LogFormat = "auto"
    log_level: str = "INFO"
    redact_pii: bool = False
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 in containers, so that Prometheus can scrape
    health_file: Path | None = None  # touched by each worker heartbeat and beat tick
    migrations_file: Path = Path("migrations.toml")
    migration_min_interval: int = Field(default=60, ge=1)  # shortest schedule interval (s)

    def __init__(
        self, _env_file: str | os.PathLike[str] | None = DEFAULT_ENV_FILE, **values: Any
    ) -> None:
        # ``.env`` may not widen where the key is sent (``_NOT_FROM_DOTENV``).
        raw = gather(
            type(self).model_fields,
            values,
            prefix=ENV_PREFIX,
            env_file=_env_file,
            not_from_dotenv=_NOT_FROM_DOTENV,
        )
        super().__init__(**raw)

    @model_validator(mode="before")
    @classmethod
    def _key_from_file(cls, data: Any) -> Any:
        # Before the fields: the file's key then goes through the same checks as the variable's.
        if not isinstance(data, dict) or not data.get("stripe_api_key_file"):
            return data
        if any(data.get(name) for name in _KEY_NAMES):
            raise ValueError(
                "VSBATCH_STRIPE_API_KEY (or STRIPE_API_KEY) and VSBATCH_STRIPE_API_KEY_FILE are"
                " both set: keep one"
            )
        return {**data, "stripe_api_key": read_key_file(Path(data["stripe_api_key_file"]))}

    @field_validator("stripe_api_key", mode="before")
    @classmethod
    def _strip_key(cls, value: Any) -> Any:
        # A pasted key often carries a newline or spaces; httpx would refuse every request.
        return value.strip() if isinstance(value, str) else value

    @field_validator("stripe_api_key")
    @classmethod
    def _check_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return value
        problem = _key_problem(value.get_secret_value())
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("redis_url")
    @classmethod
    def _normalize_redis_url(cls, value: str | None) -> str | None:
        # One URL for redis-py and kombu: ``?password=`` moves into the userinfo.
        return normalize_redis_url(value) if value else value

    @field_validator("broker_url")
    @classmethod
    def _check_broker_url(cls, value: str | None) -> str | None:
        return normalize_broker_url(value) if value else value

    @field_validator("results_url")
    @classmethod
    def _check_results_url(cls, value: str | None) -> str | None:
        # Its form only (nothing is connected to): before run stages or applies anything.
        if value:
            from vsbatch.results.url import check_form

            check_form(value)
        return value

    @field_validator("key_prefix")
    @classmethod
    def _check_key_prefix(cls, value: str) -> str:
        return check_key_prefix(value)

    @model_validator(mode="after")
    def _sentinel_needs_a_master(self) -> Settings:
        for name, url in (("REDIS_URL", self.redis_url), ("BROKER_URL", self.broker_url)):
            if is_sentinel_url(url) and not self.redis_sentinel_master:
                raise ValueError(
                    f"VSBATCH_{name} is a sentinel:// URL: set VSBATCH_REDIS_SENTINEL_MASTER to"
                    " the name the sentinels monitor the master under"
                )
        return self

    @field_validator("stripe_api_base")
    @classmethod
    def _strip_base(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError as exc:
            raise ValueError(f"not a valid URL ({exc}); e.g. https://api.stripe.com") from None
        if not parts.hostname:
            raise ValueError("names no host; e.g. https://api.stripe.com")
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"unknown log level; use one of {', '.join(_LOG_LEVELS)}")
        return level

    @property
    def results_database_url(self) -> str:
        """``VSBATCH_RESULTS_URL``, or the embedded default: SQLite in the data directory."""
        if self.results_url:
            return self.results_url
        return f"sqlite:///{self.data_dir.resolve() / RESULTS_SQLITE}"

    @property
    def is_live_key(self) -> bool:
        """True for ``sk_live_``/``rk_live_`` keys."""
        key = self.stripe_api_key.get_secret_value() if self.stripe_api_key else ""
        return key.startswith(("sk_live_", "rk_live_"))

    @property
    def effective_rate_limit(self) -> float:
        """Requests per second per Stripe account: the setting, or a safe share of Stripe's."""
        if self.rate_limit is not None:
            return self.rate_limit
        if self.is_live_key:
            return min(STRIPE_LIMIT_LIVE, STRIPE_LIMIT_ENDPOINT) * DEFAULT_SHARE_LIVE
        return STRIPE_LIMIT_TEST * DEFAULT_SHARE_TEST

    def require_api_key(self) -> str:
        """The key's value, once it is known that it may go to ``stripe_api_base``.

        Raises:
            ConfigError: no key is set, or the base is not trusted with this key
                (see :mod:`vsbatch.stripe.destination`).
        """
        if self.stripe_api_key is None or not self.stripe_api_key.get_secret_value():
            raise ConfigError("no Stripe API key: set VSBATCH_STRIPE_API_KEY (or STRIPE_API_KEY)")
        allowed = self.stripe_api_base_allow.split(",")
        check_destination(self.stripe_api_base, live=self.is_live_key, allowed=allowed)
        return self.stripe_api_key.get_secret_value()


# The names the key arrives under, from the environment (its first alias) or as a keyword.
_KEY_NAMES = ("VSBATCH_STRIPE_API_KEY", "STRIPE_API_KEY", "stripe_api_key")
_KEY_FILE_MAX = 4096  # a key is a few hundred characters; a bigger file is not a key file


def read_key_file(path: Path) -> str:
    """The key in ``path`` (``VSBATCH_STRIPE_API_KEY_FILE``), stripped and shape-checked.

    Raises:
        ValueError: The file cannot be read, is empty, or holds no usable key (the message
            names the file, never its content).
    """
    where = f"VSBATCH_STRIPE_API_KEY_FILE ({path})"
    try:
        with path.open("rb") as file:
            raw = file.read(_KEY_FILE_MAX + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {where}: {exc.strerror or type(exc).__name__}") from None
    try:
        key = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"{where} is not text") from None
    if len(raw) > _KEY_FILE_MAX or not key:
        raise ValueError(f"{where} holds no key" if not key else f"{where} is too big for a key")
    problem = _key_problem(key)
    if problem:
        raise ValueError(f"{where}: {problem}")
    return key


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, turning validation errors into one ConfigError."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        where = ".".join(str(p) for p in first["loc"]).upper()
        if not where:  # a check across settings: its message names them
            raise ConfigError(f"invalid settings: {message}") from None
        # Only the key has an unprefixed alias (STRIPE_API_KEY); every other name is VSBATCH_'s.
        keep = where.startswith("VSBATCH_") or where == "STRIPE_API_KEY"
        name = where if keep else f"VSBATCH_{where}"
        raise ConfigError(f"invalid setting {name}: {message}") from None
