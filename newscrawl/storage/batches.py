"""One batch, from buffered items to the database or the journal (blocking
code: the store pipeline runs these in worker threads).

A batch is first *prepared* (:func:`prepare_batch`): each document is made
safe (:func:`newscrawl.storage.sanitize.prepare`) or becomes a rejection.
The prepared batch is then either *written* (:meth:`BatchStore.write`: the
articles through :class:`~newscrawl.storage.writer.ArticleWriter`, the
rejections, including the ones the server refused, into
``articles_rejected``) or, when the server cannot be reached, turned into
journal records (:func:`journal_records`) and written later from them
(:func:`from_records`). Preparing happens once: what the journal holds is
exactly what would have been written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.database import Database

from newscrawl.storage.documents import Document
from newscrawl.storage.journal import ARTICLE, REJECTION, article_record, rejection_record
from newscrawl.storage.rejected import SERVER, STORE, Rejection, record_rejections
from newscrawl.storage.sanitize import DEFAULT_MAX_BYTES, Rejected, prepare
from newscrawl.storage.writer import DEFAULT_MAX_ATTEMPTS, ArticleWriter, BatchResult


@dataclass
class Prepared:
    """A batch ready to write: safe article documents and rejection documents."""

    run_id: str
    seen_at: datetime
    docs: list[Document] = field(default_factory=list)
    rejections: list[Document] = field(default_factory=list)
    #: documents that were cut to fit
    truncated: int = 0

    @property
    def size(self) -> int:
        return len(self.docs) + len(self.rejections)


def prepare_batch(
    docs: Sequence[Document],
    rejections: Sequence[Rejection],
    run_id: str,
    seen_at: datetime,
    schema: Mapping[str, Any] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Prepared:
    """Prepare every document (or reject it, stage ``store``) and turn the
    rejections into documents.

    >>> from datetime import UTC
    >>> out = prepare_batch([{"_id": "a", "body": "x" * 5000}, {"_id": 7}], [], "r1",
    ...                     datetime(2024, 1, 1, tzinfo=UTC), max_bytes=1024)
    >>> [d["_id"] for d in out.docs], out.truncated, [r["reason"] for r in out.rejections]
    (['a'], 1, ['_id must be a non-empty string, got 7'])
    """
    out = Prepared(run_id=run_id, seen_at=seen_at)
    for doc in docs:
        try:
            ready = prepare(doc, schema, max_bytes)
        except Rejected as exc:
            out.rejections.append(
                Rejection.of(doc, STORE, type(exc).__name__, str(exc), run_id).to_document()
            )
            continue
        out.truncated += bool(ready.get("truncated"))
        out.docs.append(ready)
    out.rejections.extend(rejection.to_document() for rejection in rejections)
    return out


def journal_records(batch: Prepared) -> list[Document]:
    """The journal records of a prepared batch."""
    records = [article_record(doc, batch.run_id, batch.seen_at) for doc in batch.docs]
    records.extend(rejection_record(doc) for doc in batch.rejections)
    return records


def from_records(records: Sequence[Document]) -> list[Prepared]:
    """Prepared batches again from journal records: one per run and sighting
    time, the rejections with the first.

    >>> from datetime import UTC
    >>> t = datetime(2024, 1, 1, tzinfo=UTC)
    >>> batch = Prepared("r1", t, [{"_id": "a"}, {"_id": "b"}], [{"_id": "x"}])
    >>> [(b.run_id, len(b.docs), len(b.rejections)) for b in from_records(journal_records(batch))]
    [('r1', 2, 1)]
    """
    batches: dict[tuple[str, datetime], Prepared] = {}
    rejections: list[Document] = []
    for record in records:
        if record.get("kind") == ARTICLE:
            key = (str(record["run_id"]), record["seen_at"])
            batches.setdefault(key, Prepared(run_id=key[0], seen_at=key[1])).docs.append(
                record["doc"]
            )
        elif record.get("kind") == REJECTION:
            rejections.append(record["doc"])
        else:
            raise ValueError(f"unknown journal record kind {record.get('kind')!r}")
    out = list(batches.values())
    if rejections:
        if not out:
            out.append(Prepared(run_id="", seen_at=rejections[0]["rejected_at"]))
        out[0].rejections.extend(rejections)
    return out


@dataclass
class StoreResult:
    """What writing one prepared batch did."""

    batch: BatchResult
    #: rejection documents written, by stage (new ones and ones already there)
    rejected: Counter[str] = field(default_factory=Counter)
    #: documents the server refused: article _id -> reason
    refused: dict[str, str] = field(default_factory=dict)


class BatchStore:
    """Writes prepared batches into one database (articles and rejections).
    One ArticleWriter per crawl run: a journal may hold several runs."""

    def __init__(self, db: Database[Any], max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> None:
        self.db = db
        self.max_attempts = max_attempts
        self._writers: dict[str, ArticleWriter] = {}

    def writer(self, run_id: str) -> ArticleWriter:
        if run_id not in self._writers:
            self._writers[run_id] = ArticleWriter(self.db, run_id, max_attempts=self.max_attempts)
        return self._writers[run_id]

    def write(self, batch: Prepared) -> StoreResult:
        """Write the articles, then every rejection (the batch's and the
        server's refusals). Raises pymongo errors for the whole batch (the
        caller retries or journals: writing a batch again is harmless)."""
        result = StoreResult(BatchResult())
        if batch.docs:
            result.batch = self.writer(batch.run_id).write(batch.docs, seen_at=batch.seen_at)
        rejections = list(batch.rejections)
        if result.batch.failed:
            by_key = {doc["_id"]: doc for doc in batch.docs}
            for key, reason in result.batch.failed.items():
                code = reason.partition(":")[0]
                rejection = Rejection.of(by_key[key], SERVER, code, reason, batch.run_id)
                rejections.append(rejection.to_document())
                result.refused[key] = reason
        record_rejections(self.db, rejections)
        result.rejected.update(str(doc.get("stage")) for doc in rejections)
        return result
