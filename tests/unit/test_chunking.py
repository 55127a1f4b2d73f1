"""cut_chunks: every row once, in order, in messages that shrink toward the end."""

from __future__ import annotations

from vsbatch.intake.stage import SPREAD, cut_chunks


class TestCutChunks:
    def test_an_estimate_below_the_real_count_loses_no_row(self) -> None:
        """More rows than ``pending`` said: the extra ones still go out, one per message."""
        pages = [list(range(0, 100)), list(range(100, 150))]

        chunks = list(cut_chunks(pages, pending=40, largest=10))

        assert list(range(150)) == [row for chunk in chunks for row in chunk]
        assert {1} == {len(chunk) for chunk in chunks[-SPREAD:]}

    def test_a_large_batch_starts_with_the_largest_chunks(self) -> None:
        """A batch far above SPREAD x largest rows starts with chunks of ``largest``."""
        pages = [list(range(n, n + 100)) for n in range(0, 100_000, 100)]

        chunks = list(cut_chunks(pages, pending=100_000, largest=100))

        assert [100] * 10 == [len(chunk) for chunk in chunks[:10]]
        assert 100_000 == sum(len(chunk) for chunk in chunks)
