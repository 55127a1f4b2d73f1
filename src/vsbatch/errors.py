"""The one error tree of vsbatch: every failure a user or caller can see.

::

    VsbatchError                      exit 1 unless said otherwise
    ├── ConfigError                   exit 2: a setting is missing, malformed or unreachable
    ├── InputError                    exit 2: the user's input cannot be used
    │   ├── InvalidUpdate             one update breaks Stripe's rules (field + reason)
    │   ├── BatchInProgressError      a batch of the same file is staging or open
    │   ├── CsvFileError              a whole CSV file is refused before anything is enqueued
    │   └── MigrationSpecError        a migrations TOML file is refused (line + field)
    ├── NotFoundError                 exit 2: an unknown batch, migration or row
    ├── SessionBusyError              another update of the same session holds its lock
    │   └── LockLostError             this worker's lock was taken over: drop the row
    ├── RateLimitBusy                 the fleet's rate limiter has no slot soon enough
    ├── UpdateTimeout                 an application update had no outcome within the wait
    └── StripeError                   anything the Stripe edge reports
        ├── APIConnectionError        no (complete) answer: connect, read timeout, dropped
        ├── AuthenticationError       401
        ├── CardError                 402
        ├── PermissionDeniedError     403
        ├── InvalidRequestError       400 / 404 (``param`` says which parameter)
        ├── IdempotencyError          400 idempotency_error, 409 idempotency_key_in_use
        ├── RateLimitError            429 (``rate_limit`` or ``lock_timeout``)
        └── APIError                  5xx and anything unexpected

Only the CLI turns these into exit codes, through ``exit_code``. No message ever carries the
Stripe API key: the client builds messages from Stripe's answer, never from its own headers.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "APIConnectionError",
    "APIError",
    "AuthenticationError",
    "BatchInProgressError",
    "CardError",
    "ConfigError",
    "CsvFileError",
    "IdempotencyError",
    "InputError",
    "InvalidRequestError",
    "InvalidUpdate",
    "LockLostError",
    "MigrationSpecError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitBusy",
    "RateLimitError",
    "SessionBusyError",
    "StripeError",
    "UpdateTimeout",
    "VsbatchError",
]


class VsbatchError(Exception):
    """Root of every error vsbatch raises on purpose."""

    exit_code: ClassVar[int] = 1


class ConfigError(VsbatchError):
    """A setting is missing, malformed, or names something that cannot be reached."""

    exit_code: ClassVar[int] = 2


class RedisRefused(ConfigError):
    """Redis refuses writes (``MISCONF`` on a full disk, ``OOM``): a task stops, the chunk
    message stays unacked and comes back once writes are accepted again."""


class InputError(VsbatchError):
    """The user's input (a file, an update, an argument) cannot be used."""

    exit_code: ClassVar[int] = 2


class BatchInProgressError(InputError):
    """A batch of the same file (and account) is being staged or is open: ``batch_id``."""

    def __init__(self, message: str, *, batch_id: str) -> None:
        super().__init__(message)
        self.batch_id = batch_id


class InvalidUpdate(InputError):
    """One update breaks one of Stripe's rules; ``field`` names the offending field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.reason = message


class CsvFileError(InputError):
    """A whole CSV file is refused (encoding, header, emptiness); nothing was enqueued."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None) -> None:
        super().__init__(message)
        self.row = row
        self.column = column


class MigrationSpecError(InputError):
    """A migrations file is refused; ``line`` and ``field`` say where, when known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        where = ":".join(str(p) for p in (path, line) if p is not None)
        prefix = f"{where}: " if where else ""
        suffix = f" (field {field})" if field else ""
        super().__init__(f"{prefix}{message}{suffix}")
        self.path = path
        self.line = line
        self.field = field
        self.reason = message


class NotFoundError(VsbatchError):
    """An unknown batch, migration or row was named."""

    exit_code: ClassVar[int] = 2


class SessionBusyError(VsbatchError):
    """Another update of the same session is in flight (its lock is held); try again later."""


class LockLostError(SessionBusyError):
    """This worker no longer holds the session's lock (it was paused past its heartbeat and the
    fleet took the lock over, or the lock expired): it must neither send nor record the row."""


class RateLimitBusy(VsbatchError):
    """The next free slot is further away than ``max_wait``: requeue and try later.

    Attributes:
        account: The Stripe account (None: the platform account).
        retry_after: Seconds until a slot would have been free.
    """

    def __init__(self, account: str | None, retry_after: float) -> None:
        super().__init__(f"rate limit for {account or 'platform'}: next slot in {retry_after:.1f}s")
        self.account = account
        self.retry_after = retry_after


class UpdateTimeout(VsbatchError):
    """An application update had no terminal outcome within the caller's wait.

    The update is not lost: it is still queued, running or parked, and ``outcome()`` on its
    handle tells where it stands.
    """

    def __init__(self, batch_id: str, row: int, outcome: str, timeout: float) -> None:
        super().__init__(f"update {batch_id}:{row} still {outcome} after {timeout:g}s")
        self.batch_id = batch_id
        self.row = row
        self.outcome = outcome
        self.timeout = timeout


class StripeError(VsbatchError):
    """An error reported by (or on the way to) the Stripe API, with the wire facts."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        json_body: dict[str, Any] | None = None,
        should_retry: bool | None = None,
        idempotent_replayed: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.user_message = message
        self.http_status = http_status
        self.code = code
        self.param = param
        self.request_id = request_id
        self.json_body = json_body
        # Stripe-Should-Retry, when the server sent it: its advice wins over our guesses.
        self.should_retry = should_retry
        self.idempotent_replayed = idempotent_replayed
        self.retry_after = retry_after

    @property
    def error_type(self) -> str:
        """The class name, as stored in the ledger's ``last_error.type``."""
        return type(self).__name__

    def __str__(self) -> str:
        if self.request_id:
            return f"Request {self.request_id}: {self.user_message}"
        return self.user_message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.user_message!r},"
            f" http_status={self.http_status!r}, code={self.code!r},"
            f" request_id={self.request_id!r})"
        )


class APIConnectionError(StripeError):
    """No complete answer came back: connect failure, read timeout, or dropped connection.

    ``may_have_applied`` is true when the request may have reached Stripe (a read timeout or
    a connection dropped after sending): the outcome is then ambiguous.
    """

    def __init__(self, message: str, *, may_have_applied: bool, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.may_have_applied = may_have_applied


class AuthenticationError(StripeError):
    """401: the API key is missing, wrong or revoked."""


class CardError(StripeError):
    """402: a card error (not expected from Identity, mapped for completeness)."""


class PermissionDeniedError(StripeError):
    """403: the key may not act on this object or account."""


class InvalidRequestError(StripeError):
    """400 or 404: Stripe refused the parameters or does not know the object."""


class IdempotencyError(StripeError):
    """The idempotency key was reused with other parameters, or is still in flight (409)."""


class RateLimitError(StripeError):
    """429: ``rate_limit`` (slow down) or ``lock_timeout`` (the object is busy)."""

    @property
    def is_lock_timeout(self) -> bool:
        """True when Stripe answered ``lock_timeout`` rather than the account rate limit."""
        return self.code == "lock_timeout"


class APIError(StripeError):
    """5xx, or an answer vsbatch could not understand."""
