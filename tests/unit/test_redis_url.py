"""normalize_redis_url: one Redis URL that redis-py and kombu (Celery) read the same way."""

from __future__ import annotations

import ssl
from urllib.parse import quote

import pytest
from kombu import Connection
from redis.connection import parse_url

from vsbatch.config import Settings, load_settings
from vsbatch.errors import ConfigError
from vsbatch.store.redis_url import normalize_redis_url
from vsbatch.worker.celery_app import broker_ssl

SECRET = "p@ss/w:rd#&+=?%SECRETpw"


def kombu_view(url: str) -> dict[str, object]:
    """What Celery's transport reads from the URL (parsing only, no connection)."""
    info = Connection(url).info()
    return {k: info[k] for k in ("hostname", "port", "userid", "password", "virtual_host", "ssl")}


class TestPasswordInQuery:
    def test_password_moves_into_the_userinfo(self) -> None:
        """``?password=`` becomes the userinfo's password, percent-encoded."""
        url = f"redis://127.0.0.1:6379/0?password={quote(SECRET, safe='')}"

        normalized = normalize_redis_url(url)

        assert f"redis://:{quote(SECRET, safe='')}@127.0.0.1:6379/0" == normalized

    def test_both_readers_get_the_same_password(self) -> None:
        """redis-py and kombu both read the original password from the normalized URL."""
        url = f"redis://h:6379/2?password={quote(SECRET, safe='')}"

        normalized = normalize_redis_url(url)

        assert parse_url(url)["password"] == parse_url(normalized)["password"] == SECRET
        assert (SECRET, "2") == (
            kombu_view(normalized)["password"],
            kombu_view(normalized)["virtual_host"],
        )

    def test_userinfo_password_wins_as_in_redis_py(self) -> None:
        """A password in the userinfo wins over one in the query, as redis-py decides."""
        url = "redis://:fromuserinfo@h:6379/0?password=fromquery"

        normalized = normalize_redis_url(url)

        assert parse_url(url)["password"] == parse_url(normalized)["password"] == "fromuserinfo"
        assert "fromquery" not in normalized

    def test_username_and_db_move_too(self) -> None:
        """``username`` joins the userinfo and a query ``db`` replaces the path, as redis-py."""
        url = "redis://h:6379/1?username=app&password=pw&db=4"

        normalized = normalize_redis_url(url)

        assert "redis://app:pw@h:6379/4" == normalized
        expected = {k: parse_url(url)[k] for k in ("username", "password", "db")}
        assert expected == {k: parse_url(normalized)[k] for k in ("username", "password", "db")}
        assert ("app", "pw", "4") == tuple(kombu_view(normalized)[k] for k in _CREDS)

    def test_url_without_query_is_unchanged(self) -> None:
        """A URL with nothing in its query comes back as it was."""
        url = "redis://:pw@h:6379/0"

        assert url == normalize_redis_url(url)


_CREDS = ("userid", "password", "virtual_host")


class TestTls:
    def test_rediss_keeps_its_ssl_options(self) -> None:
        """``rediss://`` with ``?password=`` and ``ssl_*`` options keeps the TLS options, which
        redis-py, kombu and ``broker_ssl`` all still read."""
        url = "rediss://h:6380/0?password=pw&ssl_cert_reqs=none&ssl_ca_certs=%2Fetc%2Fca.pem"

        normalized = normalize_redis_url(url)

        assert "rediss://:pw@h:6380/0?ssl_cert_reqs=none&ssl_ca_certs=%2Fetc%2Fca.pem" == normalized
        assert {"ssl_cert_reqs": ssl.CERT_NONE, "ssl_ca_certs": "/etc/ca.pem"} == broker_ssl(
            normalized
        )
        assert {"ssl_cert_reqs": ssl.CERT_NONE, "ssl_ca_certs": "/etc/ca.pem"} == kombu_view(
            normalized
        )["ssl"]
        assert ("none", "pw") == (
            parse_url(normalized)["ssl_cert_reqs"],
            parse_url(normalized)["password"],
        )

    def test_rediss_without_password_in_query_is_unchanged(self) -> None:
        """A TLS URL whose query holds only ``ssl_*`` options comes back as it was."""
        url = "rediss://:pw@h:6380/0?ssl_cert_reqs=required"

        assert url == normalize_redis_url(url)


class TestRefused:
    def test_option_kombu_cannot_take_is_named(self) -> None:
        """An option Celery's transport would die on is refused, named, password unquoted."""
        with pytest.raises(ValueError, match="'socket_timeout'") as info:
            normalize_redis_url("redis://h:6379/0?password=SECRETpw&socket_timeout=3")

        assert "SECRETpw" not in str(info.value)

    def test_tls_option_needs_a_tls_url(self) -> None:
        """``ssl_*`` on a plain ``redis://`` URL is refused by name: redis-py's plain connection
        has no such argument, and every command ended in a TypeError traceback."""
        with pytest.raises(ValueError, match="'ssl_cert_reqs' needs a rediss:// URL") as info:
            normalize_redis_url("redis://:SECRETpw@h:6379/0?ssl_cert_reqs=none")

        assert "SECRETpw" not in str(info.value)

    def test_db_must_be_a_number(self) -> None:
        """A non-numeric ``db`` is refused rather than silently becoming database 0."""
        with pytest.raises(ValueError, match="'db'"):
            normalize_redis_url("redis://h:6379/0?db=two")


class TestSettings:
    def test_settings_hold_the_normalized_url(self) -> None:
        """Settings normalise ``VSBATCH_REDIS_URL`` once, for every reader."""
        settings = Settings(_env_file=None, redis_url="redis://h:6379/0?password=pw")  # type: ignore[call-arg]

        assert "redis://:pw@h:6379/0" == settings.redis_url

    def test_refusal_is_one_config_error_without_the_password(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A URL Celery cannot take is one ConfigError naming the variable, not the password."""
        monkeypatch.setenv("VSBATCH_REDIS_URL", "redis://h:6379/0?password=SECRETpw&timeout=1")

        with pytest.raises(ConfigError) as info:
            load_settings(_env_file=None)

        message = str(info.value)
        assert message.startswith("invalid setting VSBATCH_REDIS_URL: the query option 'timeout'")
        assert "SECRETpw" not in message and "\n" not in message
