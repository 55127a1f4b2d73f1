"""What a task message may carry, and how a worker refuses anything else.

Anyone who can write to the broker's Redis list can push a message, so a message is input
like a CSV: it is checked before anything acts on it. A task takes only ids and small plain
values (:class:`ChunkArgs`, :class:`TickArgs`: shapes, types, sizes); what to do comes from
the ledger and the worker's own files, never from the message. A message that fails a check,
names no task of ours, or cannot be decoded is acked (dropped, never redelivered) and logged
in one line (:func:`refuse`): never run, never a traceback, never a redelivery loop.

:class:`CheckedTask` is the task base class that checks arguments before ``run``;
:class:`GuardedConsumer` replaces Celery's consumer hooks for unknown, invalid and
undecodable messages, which Celery logs as multi-line reports with tracebacks.
"""

from __future__ import annotations

import inspect
import logging
from typing import Annotated, Any, ClassVar, Final

from celery import Task, signals
from celery.worker.consumer import Consumer
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, StringConstraints, ValidationError

__all__ = [
    "MAX_CHUNK_ROWS",
    "CheckedTask",
    "ChunkArgs",
    "ChunkOptions",
    "GuardedConsumer",
    "InvalidArguments",
    "TickArgs",
    "check_arguments",
    "refuse",
]

# The most rows one chunk message may name (``Settings.chunk_size`` is capped at this).
MAX_CHUNK_ROWS: Final = 10_000
BATCH_ID: Final = r"^b_[0-9a-z]{15}$"  # ``ledger.new_batch_id``
MIGRATION_NAME: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # ``migrations`` name rule
_REASON_CHARS: Final = 300

log = logging.getLogger("vsbatch.worker.messages")


class ChunkOptions(BaseModel):
    """``RowOptions`` as a chunk message carries them: known keys, exact types, sane bounds."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    read_first: bool = False
    lock_wait: float = Field(default=5.0, ge=0, le=600)
    park_hours: float = Field(default=0.0, ge=0, le=72)


class ChunkArgs(BaseModel):
    """``process_chunk(batch_id, rows, options)``: a ledger batch id and its row numbers."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    batch_id: Annotated[str, StringConstraints(pattern=BATCH_ID)]
    rows: Annotated[list[PositiveInt], Field(min_length=1, max_length=MAX_CHUNK_ROWS)]
    options: ChunkOptions | None = None


class TickArgs(BaseModel):
    """``migration_tick(name)``: the name of a migration in the worker's own file."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: Annotated[str, StringConstraints(pattern=MIGRATION_NAME)]


class InvalidArguments(Exception):
    """A message's arguments do not fit the task (``reason`` is one line, no input echoed)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_arguments(
    model: type[BaseModel], run: Any, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Bind a message's arguments to ``run``'s parameters and validate them with ``model``.

    Returns:
        The checked arguments as plain JSON-like values, by parameter name.

    Raises:
        InvalidArguments: wrong arity, unknown keyword, or a field that fails the model.
    """
    try:
        bound = inspect.signature(run).bind(*args, **kwargs)
    except TypeError as exc:
        raise InvalidArguments(f"wrong arguments: {exc}") from None
    try:
        checked = model.model_validate(bound.arguments)
    except ValidationError as exc:
        raise InvalidArguments(_summary(exc)) from None
    return checked.model_dump(include=set(bound.arguments))


def _summary(exc: ValidationError) -> str:
    """The first problems of a validation error, without the offending input."""
    parts = [
        f"{'.'.join(str(p) for p in error['loc']) or 'arguments'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)[:3]
    ]
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def refuse(message_id: Any, task: Any, reason: str) -> None:
    """Log one line for a message that was dropped without running."""
    text = " ".join(str(reason).split())[:_REASON_CHARS]
    log.warning(
        "refused message: %s",
        text,
        extra={"task": _short(task), "message_id": _short(message_id)},
    )


def _short(value: Any) -> str | None:
    """A header value as one short line (it may come from anyone who can push a message)."""
    return None if value is None else " ".join(str(value).split())[:100]


class CheckedTask(Task):  # type: ignore[type-arg]
    """A task that checks its arguments against ``arguments`` before running.

    Celery calls a task's own ``__call__`` with the message's arguments; an invalid message
    is refused here (one line, acked as a normal return) and ``run`` never sees it; so is
    one that asks for tasks to follow (callbacks, chain, chord), which are dropped. ``run``
    raises :class:`InvalidArguments` for well-formed ids that name nothing (an unknown
    migration), refused the same way.
    """

    arguments: ClassVar[type[BaseModel]]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task on checked arguments, or refuse the message."""
        # Our messages never chain: a message that asks Celery to send further tasks after
        # this one (callbacks, chain, chord) is refused, and those are dropped, not sent.
        request = self.request
        chained = [name for name in _CHAINING if getattr(request, name, None)]
        for name in _CHAINING:
            setattr(request, name, None)
        if chained:
            return self._refuse(f"asks for {', '.join(chained)}")
        try:
            checked = check_arguments(self.arguments, self.run, args, kwargs)
        except InvalidArguments as exc:
            return self._refuse(exc.reason)
        try:
            # ``run`` directly: ``Task.__call__`` would push a request without the message id.
            return self.run(**checked)
        except InvalidArguments as exc:  # the message names something that does not exist
            return self._refuse(exc.reason)

    def _refuse(self, reason: str) -> None:
        refuse(self.request.id, self.name, reason)
        self.on_refused()

    def on_refused(self) -> None:
        """Called after this task's message was refused (a task may forget state it kept)."""


# What Celery does after a task, as the message asks: send callbacks, the chain's next task,
# the chord's body, or errbacks on failure.
_CHAINING: Final = ("callbacks", "errbacks", "chain", "chord")

# What unpacking a malformed body or header raises (never a broker connection error).
_MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError)


def _headers(message: Any) -> dict[str, Any]:
    headers = getattr(message, "headers", None)
    return headers if isinstance(headers, dict) else {}


class GuardedConsumer(Consumer):
    """Celery's consumer with one-line refusals for messages no task of ours can run."""

    def _connection_errors(self) -> tuple[type[BaseException], ...]:
        return tuple(getattr(self, "connection_errors", ()))

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Any:
        """Celery's handler of each received message, made to survive a malformed one.

        Celery unpacks a message's body and headers (``Request``) in the consumer itself; a
        body that is JSON but not ``[args, kwargs, embed]``, or headers of the wrong types,
        raise there and stop the worker, and the message, redelivered, stops the next one.
        """
        handle = super().create_task_handler(*args, **kwargs)

        def guarded(message: Any) -> Any:
            try:
                return handle(message)
            except _MALFORMED as exc:
                headers = _headers(message)
                reason = f"malformed message: {type(exc).__name__}: {exc}"
                refuse(headers.get("id"), headers.get("task"), reason)
                if not message.acknowledged:
                    message.reject_log_error(log, self._connection_errors())
                return None

        return guarded

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        """A message naming a task this worker does not have: refuse and drop it."""
        headers = _headers(message)
        refuse(headers.get("id"), headers.get("task"), "no such task")
        message.reject_log_error(log, self._connection_errors())

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        """A message that breaks the protocol or the accepted content types."""
        headers = _headers(message)
        refuse(headers.get("id"), headers.get("task"), f"{type(exc).__name__}: {exc}")
        message.reject_log_error(log, self._connection_errors())
        signals.task_rejected.send(sender=self, message=message, exc=exc)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        """A body that cannot be decoded: acked, so that it never comes back."""
        headers = _headers(message)
        kind = getattr(message, "content_type", None)
        refuse(headers.get("id"), headers.get("task"), f"cannot decode {kind} body: {exc}")
        message.ack()

    def on_unknown_message(self, body: Any, message: Any) -> None:
        """A message that is not a task message at all."""
        refuse(None, None, "not a Celery task message")
        message.reject_log_error(log, self._connection_errors())
