"""Following new and changed articles as they are stored: a change stream.

:func:`follow` opens a change stream on ``articles`` (inserts, replacements
and updates, with the full document looked up) and hands each article to a
callback, with the stream's resume token after it. Change streams need a
replica set: a real one, or SecantusDB (the embedded server), which presents
itself as a single-node replica set.

The resume token is what a consumer stores to carry on where it stopped
(:func:`save_token` / :func:`load_token`: a small JSON file replaced
atomically). A lost connection or a restarted server is waited out and the
stream resumed from the last token; a token the server no longer knows (its
oplog moved on) raises :class:`ResumeTokenLost`: export since a watermark to
catch up, then follow again.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bson import json_util
from pymongo.database import Database
from pymongo.errors import OperationFailure, PyMongoError

from newscrawl.storage.errors import is_transient
from newscrawl.storage.schema import ARTICLES

logger = logging.getLogger(__name__)

#: operations that leave a new or changed article (articles are never deleted)
OPERATIONS = ("insert", "replace", "update")
PIPELINE = [{"$match": {"operationType": {"$in": list(OPERATIONS)}}}]
#: ChangeStreamHistoryLost, ChangeStreamFatalError, and an unknown token
_TOKEN_LOST = frozenset({260, 280, 286})
RECONNECT_SECONDS = 1.0

Token = Mapping[str, Any]


class ResumeTokenLost(RuntimeError):
    """The server cannot resume from the stored token any more."""


def load_token(path: str | Path) -> Token | None:
    """The token saved in ``path``, or None when there is no file yet."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    token = json_util.loads(text)
    if not isinstance(token, dict):
        raise ValueError(f"{path} does not hold a resume token")
    return token


def save_token(path: str | Path, token: Token) -> None:
    """Write ``token`` to ``path`` atomically (a reader never sees half).

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "token.json"
    >>> save_token(target, {"_data": "8263A1"})
    >>> load_token(target)
    {'_data': '8263A1'}
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json_util.dumps(token) + "\n")
    os.replace(tmp, path)


def follow(
    db: Database[Any],
    on_article: Callable[[dict[str, Any]], None],
    *,
    resume_after: Token | None = None,
    on_token: Callable[[Token], None] | None = None,
    max_events: int | None = None,
    stop: threading.Event | None = None,
    max_await_ms: int = 500,
) -> int:
    """Call ``on_article`` for each article inserted or changed from now (or
    after ``resume_after``), then ``on_token`` with the token to resume after
    it; returns after ``max_events`` articles or when ``stop`` is set.
    Blocking. Transient failures are waited out; returns how many articles."""
    token = resume_after
    seen = 0
    while not (stop is not None and stop.is_set()):
        try:
            with db[ARTICLES].watch(
                PIPELINE,
                full_document="updateLookup",
                resume_after=token,
                max_await_time_ms=max_await_ms,
            ) as stream:
                if token is None and stream.resume_token is not None:
                    token = stream.resume_token
                    if on_token is not None:
                        on_token(token)  # "from now" is recorded before any event
                while stream.alive and not (stop is not None and stop.is_set()):
                    change = stream.try_next()
                    if change is None:
                        continue
                    token = stream.resume_token
                    article = change.get("fullDocument")
                    if article is not None:
                        on_article(article)
                        seen += 1
                    if on_token is not None and token is not None:
                        on_token(token)
                    if max_events is not None and seen >= max_events:
                        return seen
        except OperationFailure as exc:
            if exc.code in _TOKEN_LOST:
                raise ResumeTokenLost(
                    f"the server cannot resume the change stream from the saved token ({exc}); "
                    "catch up with `newscrawl export --since <last watermark>` and follow "
                    "again without the old token"
                ) from exc
            if not is_transient(exc):
                raise
            _wait(exc)
        except PyMongoError as exc:
            if not is_transient(exc):
                raise
            _wait(exc)
    return seen


def _wait(exc: PyMongoError) -> None:
    logger.warning(
        "Change stream interrupted (%s: %s); resuming in %gs",
        type(exc).__name__,
        exc,
        RECONNECT_SECONDS,
    )
    time.sleep(RECONNECT_SECONDS)
