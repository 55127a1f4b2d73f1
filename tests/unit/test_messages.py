"""Task message arguments: what a chunk or a tick message may carry, checked before any work."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from vsbatch.config import Settings
from vsbatch.migrations.run import beat_schedule
from vsbatch.migrations.spec import parse_migrations
from vsbatch.worker.broker import Envelope, transport_for
from vsbatch.worker.messages import (
    MAX_CHUNK_ROWS,
    ChunkArgs,
    InvalidArguments,
    TickArgs,
    check_arguments,
    refuse,
)
from vsbatch.worker.row_options import RowOptions

BATCH = "b_0mxb85g4qmak1cn"


def chunk_run(batch_id: str, rows: list[int], options: dict[str, Any] | None = None) -> None:
    """The shape of ``tasks.process_chunk`` (without Celery's ``self``)."""


def tick_run(name: str) -> None:
    """The shape of ``tasks.migration_tick``."""


def chunk(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return check_arguments(ChunkArgs, chunk_run, args, kwargs)


class TestChunkArguments:
    def test_what_the_producer_sends_is_accepted_unchanged(self) -> None:
        """A chunk as ``enqueue_chunk`` sends it passes through as the same plain values."""
        options = RowOptions(read_first=True, lock_wait=2.5, park_hours=23).to_message()

        assert {"batch_id": BATCH, "rows": [1, 2], "options": options} == chunk(
            BATCH, [1, 2], options
        )

    def test_options_may_be_left_out(self) -> None:
        """A chunk without options leaves them to the task's default."""
        assert {"batch_id": BATCH, "rows": [7]} == chunk(BATCH, [7])

    @pytest.mark.parametrize(
        "args",
        [
            (),
            (BATCH,),
            (BATCH, [1], None, "extra"),
            ("../../etc", [1]),
            ("b_" + "A" * 15, [1]),
            (BATCH, []),
            (BATCH, [0]),
            (BATCH, ["1"]),
            (BATCH, [1.0]),
            (BATCH, [True]),
            (BATCH, list(range(1, MAX_CHUNK_ROWS + 2))),
            (BATCH, [1], {"exec": "x"}),
            (BATCH, [1], {"lock_wait": "5"}),
            (BATCH, [1], {"lock_wait": -1.0}),
            (BATCH, [1], {"park_hours": 1e9}),
            (BATCH, [1], {"read_first": "yes"}),
            (BATCH, [1], []),
        ],
    )
    def test_bad_chunk_is_refused(self, args: tuple[Any, ...]) -> None:
        """Wrong arity, id shape, row types/signs/count, unknown or mistyped options: refused."""
        with pytest.raises(InvalidArguments):
            chunk(*args)

    def test_reason_does_not_echo_the_input(self) -> None:
        """The refusal says where and what, not the (attacker's) value."""
        with pytest.raises(InvalidArguments) as info:
            chunk(BATCH, ["SECRET-payload"])

        assert ("rows.0", False) == (
            info.value.reason.split(":")[0],
            "SECRET" in info.value.reason,
        )

    def test_chunk_size_setting_fits_a_message(self) -> None:
        """A chunk size above what a message may carry is refused at configuration."""
        with pytest.raises(ValidationError):
            Settings(_env_file=None, chunk_size=MAX_CHUNK_ROWS + 1)


class TestTickArguments:
    def test_a_name_is_accepted(self) -> None:
        """A tick names a migration, nothing else."""
        assert {"name": "crm-to-crm-id"} == check_arguments(
            TickArgs, tick_run, ("crm-to-crm-id",), {}
        )

    @pytest.mark.parametrize(
        "args", [(), ("crm", "[[migration]]\nname = 'crm'"), ({"name": "x"},), ("../x",), ("",)]
    )
    def test_anything_else_is_refused(self, args: tuple[Any, ...]) -> None:
        """A spec beside the name, a non-string or a name outside the name rule: refused."""
        with pytest.raises(InvalidArguments):
            check_arguments(TickArgs, tick_run, args, {})


class TestBeatSchedule:
    def test_tick_message_carries_only_the_name(self) -> None:
        """Beat's check message names the migration; the spec stays in the files."""
        migrations = parse_migrations(
            '[[migration]]\nname = "m"\nschedule = "15m"\n'
            '[[migration.action]]\nop = "unset"\nkeys = ["a"]\n'
        )

        assert [("m",)] == [entry["args"] for entry in beat_schedule(migrations).values()]


class TestEnvelope:
    def test_kombu_envelope_is_accepted(self) -> None:
        """The envelope kombu's Redis transport writes passes the check."""
        Envelope.model_validate(
            {
                "body": "W1tdLCB7fSwge31d",
                "content-encoding": "utf-8",
                "content-type": "application/json",
                "headers": {"task": "vsbatch.process_chunk", "id": "x"},
                "properties": {
                    "delivery_tag": "t",
                    "body_encoding": "base64",
                    "delivery_info": {"exchange": "", "routing_key": "vsbatch"},
                },
            }
        )

    @pytest.mark.parametrize(
        "item", [[1, 2], {"body": "x"}, {"body": "%%%", "properties": {}}, "text"]
    )
    def test_other_items_are_refused(self, item: Any) -> None:
        """Lists, strings, missing fields and non-base64 bodies do not pass."""
        with pytest.raises(ValidationError):
            Envelope.model_validate(item)

    def test_transport_is_used_for_redis_urls_only(self) -> None:
        """Redis, TLS Redis and Sentinel get the hardened transports; RabbitMQ keeps kombu's."""
        assert ["vsbatch.worker.broker:Transport"] * 2 + [
            "vsbatch.worker.broker:SentinelTransport",
            None,
        ] == [
            transport_for(url)
            for url in ("redis://h:6379/0", "rediss://h:6380/0", "sentinel://h:26379", "amqp://h")
        ]


class TestRefuse:
    def test_refusal_is_one_line_whatever_the_message_holds(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Newlines in the reason or in header values cannot forge extra log lines."""
        caplog.set_level("WARNING", logger="vsbatch.worker.messages")

        refuse("id\nFAKE", "task\nERROR forged line", "bad\nreason")

        record = caplog.records[0]
        text = " ".join([record.getMessage(), record.task, record.message_id])  # type: ignore[attr-defined]
        assert ("\n" in text, "refused message: bad reason") == (False, record.getMessage())
