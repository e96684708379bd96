"""Errors of the storage layer, and which ones are worth trying again.

The start errors say what could not be reached and why, so a crawl that
fails at start tells the user what to fix (a URI, a missing executable, a
busy data folder) without a traceback dive. :func:`is_transient` sorts the
errors of a running crawl: transient ones are retried and, if they last,
the documents wait in the journal.
"""

from __future__ import annotations

from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError


class StorageUnavailable(RuntimeError):
    """The database cannot be used: bad URI, server unreachable, embedded
    server failed to start. The message names the (redacted) URI or data
    path and the cause."""


class EmbeddedMongoError(StorageUnavailable):
    """The embedded SecantusDB server could not be found, started or
    stopped. The message carries the last lines of the server's log."""


class UnacknowledgedWrite(OperationFailure):
    """The write concern was not satisfied (e.g. ``w: majority`` timed out):
    the documents may or may not be stored, so the batch must be written
    again; writing a batch twice changes nothing more."""


#: server error codes that mean "not now": a primary stepping down, a
#: shutdown, a network blip seen by the server
TRANSIENT_CODES = frozenset(
    {
        6,  # HostUnreachable
        7,  # HostNotFound
        89,  # NetworkTimeout
        91,  # ShutdownInProgress
        189,  # PrimarySteppedDown
        262,  # ExceededTimeLimit
        9001,  # SocketException
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
    }
)


def is_transient(exc: BaseException) -> bool:
    """True for failures that writing again later can cure: the connection
    (reset, refused, timed out, no server selected), a primary that is not
    one any more, a shutdown, a write concern not satisfied, anything the
    server labels retryable. False for the rest (a bug, a refused command).

    >>> from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError
    >>> is_transient(AutoReconnect("reset")), is_transient(ServerSelectionTimeoutError("x"))
    (True, True)
    >>> is_transient(OperationFailure("not primary", code=10107))
    True
    >>> is_transient(OperationFailure("unauthorized", code=13)), is_transient(ValueError("bug"))
    (False, False)
    """
    if isinstance(exc, ConnectionFailure | UnacknowledgedWrite):
        return True
    if isinstance(exc, PyMongoError) and exc.timeout:
        return True
    if isinstance(exc, OperationFailure):
        labels = ("RetryableWriteError", "TransientTransactionError", "ResumableChangeStreamError")
        return exc.code in TRANSIENT_CODES or any(exc.has_error_label(label) for label in labels)
    return False
