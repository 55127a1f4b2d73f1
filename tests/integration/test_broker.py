"""The hardened kombu transport on a real Redis: a message's unacked record and its restore."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from kombu import Connection

from vsbatch.store.scripts import lua_script
from vsbatch.worker.broker import Transport

QUEUE = "vsbatch-test-broker"


@pytest.fixture
def connection(redis_url: str, redis_client: redis.Redis) -> Iterator[Connection]:
    with Connection(redis_url, transport=Transport) as conn:
        yield conn
    redis_client.delete(QUEUE, "unacked", "unacked_index")


def calls(client: redis.Redis) -> dict[str, int]:
    return {k[len("cmdstat_") :]: v["calls"] for k, v in client.info("commandstats").items()}


class TestUnackedRecord:
    def test_taking_and_acking_a_message_is_one_command_each(
        self, connection: Connection, redis_client: redis.Redis
    ) -> None:
        """A worker's take and ack each write kombu's two unacked keys in one script call,
        where kombu sent MULTI, two writes and EXEC."""
        queue = connection.SimpleQueue(QUEUE)
        queue.put({"n": 1})
        redis_client.script_load(lua_script("unacked.lua"))
        redis_client.config_resetstat()

        message = queue.get(timeout=5)
        recorded = redis_client.hlen("unacked"), redis_client.zcard("unacked_index")
        message.ack()

        sent = calls(redis_client)
        assert ({"n": 1}, (1, 1), (0, 0), 2, 0) == (
            message.payload,
            recorded,
            (redis_client.hlen("unacked"), redis_client.zcard("unacked_index")),
            sent.get("evalsha", 0),
            sent.get("multi", 0),
        )
        queue.close()

    def test_a_message_never_acked_comes_back_after_the_visibility_timeout(
        self, redis_url: str, redis_client: redis.Redis
    ) -> None:
        """What the script records is what kombu's restore reads: the backstop still works."""
        options = {"visibility_timeout": 1}
        with Connection(redis_url, transport=Transport, transport_options=options) as conn:
            queue = conn.SimpleQueue(QUEUE)
            queue.put({"n": 2})
            taken = queue.get(timeout=5)  # never acked: its worker died
            redis_client.zadd("unacked_index", {taken.delivery_tag: 0.0})  # long ago
            qos = conn.default_channel.qos
            qos.restore_visible(interval=1)
            queue.close()
        with Connection(redis_url, transport=Transport) as conn:
            again = conn.SimpleQueue(QUEUE)
            redelivered = again.get(timeout=5)
            redelivered.ack()
            again.close()
        assert ({"n": 2}, 0) == (redelivered.payload, redis_client.hlen("unacked"))
