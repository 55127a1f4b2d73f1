"""The process's Redis client on a real server: many threads share it without failing."""

from __future__ import annotations

import threading

from vsbatch.bootstrap import redis_client


class TestSharedClient:
    def test_more_threads_than_redis_pys_default_pool_never_fail(self, redis_url: str) -> None:
        """A worker runs up to 256 threads: 300 of them in a command at the same moment all
        get their answer (redis-py's default pool of 100 failed the rest at once with "Too
        many connections", and each failure cost a whole chunk)."""
        client = redis_client(redis_url)
        start = threading.Barrier(300)
        errors: list[Exception] = []

        def command() -> None:
            start.wait()
            try:
                client.blpop(["vsbatch-test-empty"], timeout=0.5)  # holds its connection
            except Exception as exc:  # what the test counts
                errors.append(exc)

        threads = [threading.Thread(target=command) for _ in range(300)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        client.close()

        assert [] == [f"{type(e).__name__}: {e}" for e in errors[:3]]
