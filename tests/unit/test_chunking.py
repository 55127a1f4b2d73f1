"""cut_chunks: every row once, in order, in messages of one account that shrink toward the end."""

from __future__ import annotations

from vsbatch.intake.chunks import OPEN_CHUNKS, SPREAD, cut_chunks


def platform(rows: range) -> list[tuple[int, str | None]]:
    """Rows of the platform account (no ``stripe_account``)."""
    return [(row, None) for row in rows]


class TestCutChunks:
    def test_an_estimate_below_the_real_count_loses_no_row(self) -> None:
        """More rows than ``pending`` said: the extra ones still go out, one per message."""
        rows = platform(range(150))

        chunks = list(cut_chunks(rows, pending=40, largest=10))

        assert list(range(150)) == [row for chunk in chunks for row in chunk]
        assert {1} == {len(chunk) for chunk in chunks[-SPREAD:]}

    def test_a_large_batch_starts_with_the_largest_chunks(self) -> None:
        """A batch far above SPREAD x largest rows starts with chunks of ``largest``."""
        rows = platform(range(100_000))

        chunks = list(cut_chunks(rows, pending=100_000, largest=100))

        assert [100] * 10 == [len(chunk) for chunk in chunks[:10]]
        assert 100_000 == sum(len(chunk) for chunk in chunks)

    def test_interleaved_accounts_fill_a_chunk_each(self) -> None:
        """Rows of two accounts taking turns go out in full chunks of one account each."""
        rows = [(n, "acct_a" if n % 2 else "acct_b") for n in range(100_000)]

        chunks = list(cut_chunks(rows, pending=100_000, largest=100))

        assert ([100] * 10, [0, 2, 4], [1, 3, 5]) == (
            [len(chunk) for chunk in chunks[:10]],
            chunks[0][:3],
            chunks[1][:3],
        )

    def test_a_file_sorted_by_account_leaves_no_big_chunk_for_the_end(self) -> None:
        """An account whose rows stop sends its last, partly filled chunk soon after, not
        at the end of the batch, where it would run alone after every other row."""
        rows = [(n, f"acct_{n // 7_500}") for n in range(30_000)]

        chunks = list(cut_chunks(rows, pending=30_000, largest=100))

        assert list(range(30_000)) == sorted(row for chunk in chunks for row in chunk)
        assert max(len(chunk) for chunk in chunks[-SPREAD:]) <= 2

    def test_accounts_with_a_row_or_two_share_chunks(self) -> None:
        """Thousands of accounts with one row each do not make one message per row: past
        OPEN_CHUNKS accounts being filled, the oldest share a chunk."""
        rows = [(n, f"acct_{n}") for n in range(20_000)]

        chunks = list(cut_chunks(rows, pending=20_000, largest=100))

        assert list(range(20_000)) == sorted(row for chunk in chunks for row in chunk)
        assert len(chunks) <= 20_000 / 100 + SPREAD * 5 + OPEN_CHUNKS
