"""Settings for Redis and brokers as users run them: ``sentinel://`` URL lists, a separate
broker (RabbitMQ), the key prefix (a Redis Cluster hash tag) and the key read from a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from vsbatch.config import Settings, load_settings
from vsbatch.errors import ConfigError
from vsbatch.store.redis_url import SentinelTarget, parse_sentinel_url
from vsbatch.worker.celery_app import broker_options, broker_url

KEY = "sk_test_fromFILE0123456789SECRET"


class TestSentinelUrl:
    def test_a_list_of_sentinels_as_kombu_takes_it(self) -> None:
        """Every ``;``-joined part names a sentinel; credentials and db come from the first."""
        url = "sentinel://:p%40ss@s1:26380/2;sentinel://:p%40ss@s2/2"

        assert SentinelTarget((("s1", 26380), ("s2", 26379)), None, "p@ss", 2) == (
            parse_sentinel_url(url)
        )

    @pytest.mark.parametrize(
        ("url", "says"),
        [
            ("sentinel://s1:26379;redis://s2:6379", "sentinel URL 2 must start with sentinel://"),
            ("sentinel://:pw@s1:26379/0?socket_timeout=3", "has a query"),
            ("sentinel://:pw@s1:99999", "not a valid URL"),
            ("sentinel://:pw@s1/zero", "database number"),
        ],
    )
    def test_malformed_lists_are_refused_without_quoting_them(self, url: str, says: str) -> None:
        """A bad part is named by position; the message never holds the URL's password."""
        with pytest.raises(ConfigError) as refused:
            load_settings(_env_file=None, redis_url=url, redis_sentinel_master="m")

        assert says in str(refused.value)
        assert "pw" not in str(refused.value)

    def test_a_sentinel_url_needs_the_master_name(self) -> None:
        """Without VSBATCH_REDIS_SENTINEL_MASTER, one line says to set it."""
        with pytest.raises(ConfigError, match="set VSBATCH_REDIS_SENTINEL_MASTER"):
            load_settings(_env_file=None, redis_url="sentinel://s1:26379")

    def test_the_broker_gets_the_master_name_and_the_sentinels_password(self) -> None:
        """kombu's Sentinel transport reads master_name and sentinel_kwargs; the hardened
        transport is used for Sentinel too."""
        settings = Settings(
            _env_file=None,
            redis_url="sentinel://:pw@s1:26379/0",
            redis_sentinel_master="vsmaster",
            redis_sentinel_password="sentpw",
        )

        options = broker_options(settings, broker_url(settings))

        assert ("vsmaster", {"password": "sentpw"}) == (
            options["broker_transport_options"]["master_name"],
            options["broker_transport_options"]["sentinel_kwargs"],
        )
        assert "vsbatch.worker.broker:SentinelTransport" == options["broker_transport"]


class TestBrokerUrl:
    def test_unset_means_the_ledgers_redis(self) -> None:
        """Without VSBATCH_BROKER_URL the queue stays on VSBATCH_REDIS_URL, as before."""
        settings = Settings(_env_file=None, redis_url="redis://h:6379/0")

        assert ("redis://h:6379/0", None) == (
            broker_url(settings),
            broker_options(settings, broker_url(settings))["task_queues"],
        )

    def test_rabbitmq_gets_a_durable_quorum_queue_on_a_topic_exchange(self) -> None:
        """An amqp:// broker declares the chunk queue as a quorum queue, publishes with
        confirms, and uses kombu's own AMQP transport."""
        settings = Settings(
            _env_file=None, redis_url="redis://h:6379/0", broker_url="amqp://u:p@rabbit:5672//"
        )

        options = broker_options(settings, broker_url(settings))
        (queue,) = options["task_queues"]

        assert ("amqp://u:p@rabbit:5672//", None) == (
            broker_url(settings),
            options["broker_transport"],
        )
        assert ({"x-queue-type": "quorum"}, True, "topic") == (
            queue.queue_arguments,
            queue.durable,
            queue.exchange.type,
        )
        assert {"confirm_publish": True} == options["broker_transport_options"]

    def test_other_schemes_are_refused(self) -> None:
        """A broker Celery might take but vsbatch does not run on is one line."""
        with pytest.raises(ConfigError, match="VSBATCH_BROKER_URL: must start with amqp://"):
            load_settings(_env_file=None, broker_url="sqs://key:secret@")


class TestKeyPrefix:
    @pytest.mark.parametrize("prefix", ["vsbatch", "{vsbatch}", "team-a:{vsbatch}", "vs.b_1"])
    def test_accepted(self, prefix: str) -> None:
        """Plain names and one hash tag are accepted as they are."""
        assert prefix == Settings(_env_file=None, key_prefix=prefix).key_prefix

    @pytest.mark.parametrize("prefix", ["", "{}", "{a}{b}", "a b", "{vsbatch", "x" * 65])
    def test_refused(self, prefix: str) -> None:
        """Empty, spaces, an empty or second hash tag, an open brace: one line."""
        with pytest.raises(ConfigError, match="VSBATCH_KEY_PREFIX"):
            load_settings(_env_file=None, key_prefix=prefix)


class TestKeyFile:
    def test_the_key_is_read_from_the_file_and_stripped(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """VSBATCH_STRIPE_API_KEY_FILE (a container secret) gives the key, newline stripped."""
        secret = tmp_path / "stripe_api_key"
        secret.write_text(f"  {KEY}\n", encoding="utf-8")
        monkeypatch.setenv("VSBATCH_STRIPE_API_KEY_FILE", str(secret))

        settings = load_settings(_env_file=None)

        assert settings.stripe_api_key is not None
        assert KEY == settings.stripe_api_key.get_secret_value()
        assert KEY not in repr(settings)

    def test_both_set_is_one_line(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """The variable and the file both set: refused, naming both, quoting neither key."""
        secret = tmp_path / "stripe_api_key"
        secret.write_text(KEY, encoding="utf-8")
        monkeypatch.setenv("VSBATCH_STRIPE_API_KEY_FILE", str(secret))
        monkeypatch.setenv("STRIPE_API_KEY", "sk_test_fromENV0123456789")

        with pytest.raises(ConfigError) as refused:
            load_settings(_env_file=None)

        message = str(refused.value)
        assert "VSBATCH_STRIPE_API_KEY_FILE are both set" in message
        assert ("SECRET" not in message, "\n" not in message) == (True, True)

    @pytest.mark.parametrize(
        ("content", "says"),
        [
            (None, "cannot read"),
            ("\n", "holds no key"),
            ("pk_test_abc", "publishable key"),
            (KEY + "\n" + "x" * 5000, "too big"),
        ],
    )
    def test_unusable_files_are_one_line(
        self, tmp_path: Path, content: str | None, says: str
    ) -> None:
        """Missing, empty, a publishable key, a file that is no key: named, never quoted."""
        secret = tmp_path / "stripe_api_key"
        if content is not None:
            secret.write_text(content, encoding="utf-8")

        with pytest.raises(ConfigError) as refused:
            load_settings(_env_file=None, stripe_api_key_file=secret)

        assert says in str(refused.value)
        assert (str(secret) in str(refused.value), "SECRET" in str(refused.value)) == (True, False)
