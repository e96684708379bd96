"""Errors of the storage layer.

Both say what could not be reached and why, so a crawl that fails at start
tells the user what to fix (a URI, a missing executable, a busy data folder)
without a traceback dive.
"""

from __future__ import annotations


class StorageUnavailable(RuntimeError):
    """The database cannot be used: bad URI, server unreachable, embedded
    server failed to start. The message names the (redacted) URI or data
    path and the cause."""


class EmbeddedMongoError(StorageUnavailable):
    """The embedded SecantusDB server could not be found, started or
    stopped. The message carries the last lines of the server's log."""
