"""The store's own errors, and which driver errors mean "timed out" or "connection gone".

A timed-out call is a `StoreTimeout` naming the statement kind and the limit that ran out
(PostgreSQL's statement_timeout or lock_timeout, SQLite's busy_timeout), not a raw driver
error. It is also an SQLAlchemy `OperationalError`, so code that already retries a busy
database on OperationalError keeps doing so.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError

#: PostgreSQL SQLSTATEs: query_canceled (statement_timeout) and lock_not_available.
_PG_TIMEOUTS = {"57014": "statement_timeout", "55P03": "lock_timeout"}
#: asyncpg messages of a connection whose protocol state is broken (a call cancelled or
#: killed mid-flight): the connection cannot be used again.
_BROKEN = (
    "another operation is in progress",
    "connection was closed in the middle of operation",
    "connection is closed",
    "cannot switch to state",
    "unexpected connection_lost",
)


class StoreError(RuntimeError):
    """The store is misconfigured or used outside its lifetime."""


class GroupCommitFailed(StoreError):
    """The transaction this unit of work was committed in failed (an I/O error, a full
    disk, a COMMIT refused): the unit's writes are not in the database."""


class StoreTimeout(StoreError, OperationalError):
    """A store call ran out of its time limit: `kind` is the statement's first keyword
    (SELECT, UPDATE, LOCK, COMMIT...), `limit` the setting that ran out."""

    def __init__(self, kind: str, limit: str, error: DBAPIError) -> None:
        OperationalError.__init__(
            self,
            error.statement,
            error.params,
            error.orig if error.orig is not None else error,
            connection_invalidated=False,
        )
        self.kind = kind
        self.limit = limit

    def __str__(self) -> str:
        return f"store call timed out: {self.kind} ran out of {self.limit}"

    def __reduce__(self) -> tuple[object, ...]:  # pickling: keep the message, not the orig
        return (StoreError, (str(self),))


def statement_kind(statement: str | None) -> str:
    """The first keyword of `statement` ("COMMIT" when there is none: the failure came
    from ending the transaction)."""
    if not statement:
        return "COMMIT"
    words = statement.lstrip().split(None, 1)
    return words[0].upper()[:16] if words else "COMMIT"


def timeout_limit(error: BaseException, dialect: str, busy_timeout_ms: int) -> str | None:
    """The limit `error` says ran out, or None if it is not a timeout."""
    orig = getattr(error, "orig", None)
    if dialect == "postgresql":
        return _PG_TIMEOUTS.get(str(getattr(orig, "sqlstate", "") or ""))
    text = str(orig if orig is not None else error).lower()
    if "database is locked" in text or "database table is locked" in text:
        return f"busy_timeout ({busy_timeout_ms} ms)"
    return None


def is_broken_connection(error: BaseException) -> bool:
    """Whether the connection that raised `error` must be discarded, not reused."""
    orig = getattr(error, "orig", None)
    text = f"{orig if orig is not None else ''} {error}".lower()
    return any(marker in text for marker in _BROKEN)


def is_store_failure(error: BaseException) -> bool:
    """A failure of the database itself (unreachable, timed out, disk full, commit
    refused), as opposed to a unit of work's own error (a constraint, a bug)."""
    if isinstance(error, StoreTimeout | GroupCommitFailed | OSError | TimeoutError):
        return True
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or type(error).__name__ in (
            "OperationalError",
            "InterfaceError",
            "InternalError",
            "DBAPIError",
        )
    return False
