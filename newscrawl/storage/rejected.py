"""Documents that could not be stored, kept in ``articles_rejected`` with why.

Nothing scraped disappears silently: an item the validate pipeline drops, a
document the store's own checks refuse (:mod:`~newscrawl.storage.sanitize`),
or one the server's validator refuses becomes one rejection document::

    {_id: "<sha1 of run, stage, article and reason>",
     article_id: "finews:NW…" | null, url: "https://…" | null,
     stage: "validate" | "store" | "server",
     error: "MissingTitle" | "Rejected" | "121" | …,
     reason: "title: expected string, got int 42",
     run_id: "…", rejected_at: <date>,
     document: {…}}   # a readable copy: keys escaped, cut to 1 MiB

The ``_id`` makes recording idempotent: the same article refused for the
same reason in one run is one document, however often it is met or the
journal replays it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.database import Database

from newscrawl.storage.documents import Document
from newscrawl.storage.sanitize import readable_copy
from newscrawl.storage.schema import ARTICLES_REJECTED

logger = logging.getLogger(__name__)

#: dropped by a pipeline before the store (``ValidatePipeline``)
VALIDATE = "validate"
#: refused by the store's own checks (no key, unstorable values, too large)
STORE = "store"
#: refused by the database (its validator, a unique index)
SERVER = "server"
MAX_REASON = 2000


def rejection_id(run_id: str, stage: str, what: str, reason: str) -> str:
    """The rejection's ``_id``: one per run, stage, article (or URL) and reason.

    >>> rejection_id("r1", "store", "finews:NW1", "too big") == rejection_id(
    ...     "r1", "store", "finews:NW1", "too big")
    True
    >>> len(rejection_id("r1", "store", "finews:NW1", "too big"))
    40
    """
    text = "\x00".join((run_id, stage, what, reason))
    return hashlib.sha1(text.encode("utf-8", errors="replace")).hexdigest()


@dataclass
class Rejection:
    """One refused document, before it is recorded. ``document`` is what was
    refused, as it came (made readable by :meth:`to_document`)."""

    stage: str
    error: str
    reason: str
    run_id: str
    article_id: str | None = None
    url: str | None = None
    document: Any = None
    rejected_at: datetime = field(default_factory=lambda: datetime.now(tz=UTC))

    @classmethod
    def of(
        cls, doc: Mapping[str, Any], stage: str, error: str, reason: str, run_id: str
    ) -> Rejection:
        """A rejection of ``doc`` (an item's fields, or a document with ``_id``)."""
        key = doc.get("_id", doc.get("key"))
        url = doc.get("url")
        return cls(
            stage=stage,
            error=error,
            reason=reason,
            run_id=run_id,
            article_id=key if isinstance(key, str) and key else None,
            url=url if isinstance(url, str) and url else None,
            document=dict(doc),
        )

    def to_document(self) -> Document:
        """The document for ``articles_rejected`` (blocking for big documents:
        call it off the reactor thread).

        >>> doc = Rejection("store", "Rejected", "title: expected string", "r1",
        ...                 "finews:NW1", "https://h/1.html", {"title": 42}).to_document()
        >>> doc["article_id"], doc["stage"], doc["document"], len(doc["_id"])
        ('finews:NW1', 'store', {'title': 42}, 40)
        """
        reason = self.reason[:MAX_REASON]
        what = self.article_id or self.url or ""
        return {
            "_id": rejection_id(self.run_id, self.stage, what, reason),
            "article_id": self.article_id,
            "url": self.url,
            "stage": self.stage,
            "error": self.error,
            "reason": reason,
            "run_id": self.run_id,
            "rejected_at": self.rejected_at,
            "document": readable_copy(self.document),
        }


def record_rejections(db: Database[Any], docs: Sequence[Document]) -> int:
    """Insert rejection documents (from :meth:`Rejection.to_document`), each
    once (an ``_id`` already there is left as it is); returns how many were
    new. Blocking."""
    if not docs:
        return 0
    ops = [
        UpdateOne(
            {"_id": doc["_id"]},
            {"$setOnInsert": {name: value for name, value in doc.items() if name != "_id"}},
            upsert=True,
        )
        for doc in docs
    ]
    result = db[ARTICLES_REJECTED].bulk_write(ops, ordered=False)
    return result.upserted_count
