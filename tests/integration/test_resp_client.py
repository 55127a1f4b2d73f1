"""The small RESP client (``store.resp``) answers as redis-py does, over the real test Redis.

Every read the ledger's readers make is asked of both clients and must come back the same;
the ledger's reads run over either; the URLs, errors and checks are redis-py's.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from vsbatch.errors import ConfigError
from vsbatch.model.row import NewRow, Outcome
from vsbatch.store import resp
from vsbatch.store.ledger import Ledger
from vsbatch.store.ledger_reader import LedgerReader
from vsbatch.store.liveness import live_nodes
from vsbatch.store.resp import AuthenticationError, RespClient, ResponseError

SCRIPT = "return {KEYS[1], tonumber(ARGV[1]) + 1, redis.call('GET', KEYS[1]), false, {ARGV[2]}}"


@pytest.fixture
def small(redis_url: str, redis_client: redis.Redis) -> Iterator[RespClient]:
    """The small client on the flushed test database."""
    client = RespClient.from_url(redis_url)
    assert client is not None
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def filled(redis_client: redis.Redis) -> redis.Redis:
    """The test database with one key of each type the readers read."""
    redis_client.set("s", "välue")
    redis_client.hset("h", mapping={"a": "1", "b": b"\x00\xff", "empty": ""})
    redis_client.zadd("z", {"one": 1, "two": 2, "three": 3})
    redis_client.sadd("set", "x", "y")
    return redis_client


READS: dict[str, Callable[[Any], Any]] = {
    "get": lambda c: c.get("s"),
    "get-missing": lambda c: c.get("nothing"),
    "hget": lambda c: c.hget("h", "b"),
    "hget-missing": lambda c: c.hget("h", "zzz"),
    "hmget": lambda c: c.hmget("h", ["a", "zzz", "empty"]),
    "hgetall": lambda c: c.hgetall("h"),
    "hgetall-missing": lambda c: c.hgetall("nothing"),
    "zrevrange": lambda c: c.zrevrange("z", 0, 1),
    "smembers": lambda c: c.smembers("set"),
    "exists": lambda c: c.exists("s", "h", "nothing"),
    "ping": lambda c: c.ping(),
    "script": lambda c: c.register_script(SCRIPT)(keys=["s"], args=[41, "é"]),
}


class TestSameAnswersAsRedisPy:
    @pytest.mark.parametrize("read", list(READS), ids=list(READS))
    def test_read(self, read: str, filled: redis.Redis, small: RespClient) -> None:
        """Each read the ledger's readers make answers what redis-py answers."""
        expected = READS[read](filled)

        assert expected == READS[read](small)

    @pytest.mark.parametrize("transaction", [True, False])
    def test_pipeline(self, transaction: bool, filled: redis.Redis, small: RespClient) -> None:
        """A pipeline of HGETALL and EXISTS, in MULTI/EXEC or not, answers as redis-py's."""

        def run(client: Any) -> list[Any]:
            pipe = client.pipeline(transaction=transaction)
            pipe.hgetall("h")
            pipe.exists("set")
            pipe.hgetall("nothing")
            return list(pipe.execute())

        assert run(filled) == run(small)

    def test_script_loaded_once_flushed(self, filled: redis.Redis, small: RespClient) -> None:
        """A script the server forgot (SCRIPT FLUSH) is loaded again and runs."""
        script = small.register_script(SCRIPT)
        script(keys=["s"], args=[1, "a"])
        filled.script_flush()

        assert [b"s", 3, "välue".encode(), None, [b"b"]] == script(keys=["s"], args=[2, "b"])

    def test_error_reply_raises_and_the_connection_goes_on(
        self, filled: redis.Redis, small: RespClient
    ) -> None:
        """A command Redis refuses raises ResponseError; the next command still works."""
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            small.hgetall("s")

        assert b"1" == small.hget("h", "a")

    def test_pipeline_error_raises_after_reading_every_reply(
        self, filled: redis.Redis, small: RespClient
    ) -> None:
        """An error in a pipeline raises, and the replies after it do not leak to the next."""
        pipe = small.pipeline(transaction=False)
        pipe.hgetall("s")
        pipe.exists("h")
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            pipe.execute()

        assert 1 == small.exists("h")


class TestLedgerReads:
    @pytest.fixture
    def batch_id(self, redis_client: redis.Redis) -> str:
        ledger = Ledger(redis_client)
        batch = ledger.create_batch(name="two", kind="csv", source="x.csv")
        params = {"metadata": {"a": "b"}}
        ledger.add_rows(
            batch.id,
            [NewRow(n, f"vs_{n}", None, params, idempotency_key=f"k{n}") for n in (2, 3, 5)],
        )
        ledger.open_batch(batch.id)
        ledger.transition(batch.id, 3, Outcome.FAILED, error_message="No such x")
        return batch.id

    def test_ledger_reads_the_same_through_either_client(
        self, batch_id: str, redis_client: redis.Redis, small: RespClient
    ) -> None:
        """Batches, rows and worker heartbeats read the same through both clients."""

        def read(reader: LedgerReader[Any]) -> tuple[Any, ...]:
            return (
                reader.list_batches(),
                reader.get_batch(batch_id),
                list(reader.iter_rows(batch_id)),
                reader.get_row(batch_id, 5),
                live_nodes(reader.client, reader.keys),
            )

        keys = LedgerReader(redis_client).keys
        redis_client.sadd(keys.nodes, "n1", "n2")
        redis_client.set(keys.alive("n2"), "1")

        assert read(LedgerReader(redis_client)) == read(LedgerReader(small))


class TestUrls:
    @pytest.mark.parametrize(
        "url",
        [
            "redis://h:1/0?socket_timeout=3",
            "redis+sentinel://h:26379/mymaster",
            "unix:///tmp/redis.sock?db=1",
            "redis://user@h:1/0",
            "http://h",
        ],
    )
    def test_urls_it_cannot_speak_are_left_to_redis_py(self, url: str) -> None:
        """Another scheme or query option, or a user without a password: None (redis-py)."""
        assert RespClient.from_url(url) is None

    @pytest.mark.parametrize(
        "url", ["unix:///run/redis.sock", "rediss://:pw@h:6380/1?ssl_cert_reqs=none"]
    )
    def test_urls_it_speaks(self, url: str) -> None:
        """A unix socket, and TLS with redis-py's options, are the small client's."""
        assert RespClient.from_url(url) is not None

    def test_path_selects_the_database(self, redis_client: redis.Redis) -> None:
        """``redis://.../2`` reads database 2 (SELECT after AUTH), as redis-py does."""
        redis_client.set("s", "db0")
        other = RespClient.from_url(_url_with_db(redis_client, 2))
        assert other is not None
        try:
            assert None is other.get("s")
        finally:
            other.close()

    def test_bad_cert_reqs_is_refused_as_redis_py_refuses_it(self) -> None:
        """``ssl_cert_reqs=maybe`` is no TLS setting (one ConfigError line, like redis-py)."""
        with pytest.raises(ConfigError, match=r"^invalid VSBATCH_REDIS_URL: Invalid SSL"):
            resp.connect("rediss://h:6380/0?ssl_cert_reqs=maybe")


class TestConnect:
    def test_wrong_password_is_one_line_without_it(self, redis_url: str) -> None:
        """A refused password is a ConfigError naming the URL with its password hidden."""
        url = _with_password(redis_url, "hunter2-wrong")

        with pytest.raises(ConfigError, match="refused the credentials") as caught:
            resp.connect(url)

        assert "hunter2-wrong" not in str(caught.value)

    def test_missing_password_is_an_authentication_error(self, redis_url: str) -> None:
        """A server that wants a password answers NOAUTH: an AuthenticationError."""
        client = RespClient.from_url(_with_password(redis_url, None))
        assert client is not None

        with pytest.raises(AuthenticationError):
            try:
                client.get("s")
            finally:
                client.close()

    def test_unreachable_server_is_one_line(self) -> None:
        """Nothing listening: 'cannot reach Redis' naming ConnectionError, password hidden."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]

        with pytest.raises(ConfigError, match=r"cannot reach Redis at .*: ConnectionError$"):
            resp.connect(f"redis://:pw@127.0.0.1:{port}/0")


def _with_password(url: str, password: str | None) -> str:
    """``url`` with its password replaced (or removed)."""
    scheme, _, rest = url.partition("://")
    hostpart = rest.rpartition("@")[2]
    return f"{scheme}://:{password}@{hostpart}" if password else f"{scheme}://{hostpart}"


def _url_with_db(client: redis.Redis, db: int) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://:{kwargs['password']}@{kwargs['host']}:{kwargs['port']}/{db}"
