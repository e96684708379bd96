"""Writing a batch of articles: one read, one bulk write, versions archived.

Blocking pymongo code, meant to run off the reactor thread (the store pipeline
calls :meth:`ArticleWriter.write` in a worker thread, one batch at a time).

An article the read did not find is *inserted*; a stored one is replaced
under a guard on the version (and last sighting) that was read
(``{_id, version, last_seen_at, last_run_id}``). A concurrent writer (another
crawl on the same database) is thus detected instead of overwritten: the
insert fails on the unique ``_id``, or the guarded upsert matches nothing and
its insert fails there; when the document is no longer the one read, it is
read again and merged again, a bounded number of times. Both kinds go in one
unordered ``bulk_write`` (the driver sends the inserts and the replacements
as one command each). Inserting rather than upserting what is new matters on
a first crawl, where every article is new: a server applies an insert without
first looking for a document that matches a filter (SecantusDB spends about
0.5 ms per article on an insert, 1.2 ms on a guarded upsert).

A write the server applied but did not acknowledge as the write concern asks
raises :class:`UnacknowledgedWrite` for the whole batch: the caller treats it
as transient and writes the batch again (merging is idempotent) or journals it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo import InsertOne, ReplaceOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from newscrawl.storage.documents import MERGED, Document, combine, merge
from newscrawl.storage.errors import UnacknowledgedWrite
from newscrawl.storage.schema import ARTICLE_VERSIONS, ARTICLES

logger = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
DEFAULT_MAX_ATTEMPTS = 5
#: what every write changes: a document still holding the values read was
#: not written by anyone else since (the version alone misses "unchanged"
#: sightings, whose new URLs would be lost)
GUARD_FIELDS = ("version", "last_seen_at", "last_run_id")
#: "no document" when comparing what was read with what is there
MISSING = object()


def _stamp(doc: Document | None) -> Any:
    return MISSING if doc is None else tuple(doc.get(name) for name in GUARD_FIELDS)


@dataclass
class BatchResult:
    """What one batch did. Counts are per item: items of one article folded
    together in the batch count as ``merged`` after the first."""

    counts: Counter[str] = field(default_factory=Counter)
    #: article _id -> outcome of the written document
    outcomes: dict[str, str] = field(default_factory=dict)
    #: article _id -> why it was not stored
    failed: dict[str, str] = field(default_factory=dict)
    #: items not stored (an article folded from 3 items that failed counts 3)
    failed_items: int = 0
    archived: int = 0
    #: article _id -> why its previous version could not be archived
    archive_failed: dict[str, str] = field(default_factory=dict)
    #: documents written again after losing a race with another writer
    retries: int = 0
    seconds: float = 0.0


def _describe(error: dict[str, Any]) -> str:
    text = f"{error.get('code')}: {error.get('errmsg', '')}"
    info = error.get("errInfo")
    return f"{text} {info}"[:1000] if info else text


class ArticleWriter:
    """Merges batches of item documents (from ``to_document``) into
    ``articles`` for one crawl run, archiving replaced versions."""

    def __init__(
        self, db: Database[Any], run_id: str, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS
    ) -> None:
        self.articles = db[ARTICLES]
        self.versions = db[ARTICLE_VERSIONS]
        self.run_id = run_id
        self.max_attempts = max(1, max_attempts)

    def write(self, docs: Sequence[Document], seen_at: datetime | None = None) -> BatchResult:
        """Store ``docs``, sighted at ``seen_at`` (default: now). Per-document
        failures are in the result; a failure of the whole batch (connection
        lost, write concern not satisfied) raises a pymongo error."""
        started = time.monotonic()
        result = BatchResult()
        pending: dict[str, Document] = {}
        items: Counter[str] = Counter()
        for doc in docs:
            key = doc["_id"]
            items[key] += 1
            pending[key] = combine(pending[key], doc) if key in pending else doc
        archives: list[Document] = []
        for attempt in range(1, self.max_attempts + 1):
            lost = self._write_once(pending, items, result, archives, seen_at)
            pending = {key: pending[key] for key in lost}
            if not pending:
                break
            logger.info(
                "Lost the write race for %d article(s) (attempt %d): %s",
                len(lost),
                attempt,
                sorted(lost),
            )
            if attempt < self.max_attempts:
                result.retries += len(lost)
        for key in pending:
            result.failed[key] = f"still changed by another writer after {self.max_attempts} tries"
            result.failed_items += items[key]
        if archives:
            self._archive(archives, result)
        result.seconds = time.monotonic() - started
        return result

    def _write_once(
        self,
        pending: dict[str, Document],
        items: Counter[str],
        result: BatchResult,
        archives: list[Document],
        seen_at: datetime | None,
    ) -> set[str]:
        """One read + one bulk write of ``pending``; returns the keys that lost
        a race and must be redone."""
        now = datetime.now(tz=UTC)
        existing = {doc["_id"]: doc for doc in self.articles.find({"_id": {"$in": list(pending)}})}
        keys: list[str] = []
        ops: list[InsertOne[Document] | ReplaceOne[Document]] = []
        plans: dict[str, tuple[str, Document | None]] = {}
        read_versions: dict[str, Any] = {}
        for key, new in pending.items():
            old = existing.get(key)
            doc, outcome, archive = merge(old, new, self.run_id, now, seen_at)
            if old is None:
                ops.append(InsertOne(doc))
            else:
                guard = {"_id": key, **{name: old.get(name) for name in GUARD_FIELDS}}
                ops.append(ReplaceOne(guard, doc, upsert=True))
            read_versions[key] = _stamp(old)
            keys.append(key)
            plans[key] = (outcome, archive)
        lost: set[str] = set()
        failed: dict[str, str] = {}
        try:
            self.articles.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            duplicates: dict[str, str] = {}
            for error in exc.details.get("writeErrors", []):
                key = keys[error["index"]]
                if error.get("code") == DUPLICATE_KEY:
                    duplicates[key] = _describe(error)
                else:
                    failed[key] = _describe(error)
            if duplicates:
                lost = self._changed_since_read(read_versions, duplicates)
                failed.update({k: v for k, v in duplicates.items() if k not in lost})
            concern_errors = exc.details.get("writeConcernErrors") or []
            if concern_errors:
                # applied but not acknowledged as asked: not known to be stored
                message = "; ".join(_describe(error) for error in concern_errors)
                raise UnacknowledgedWrite(
                    f"write concern not satisfied: {message}", details=exc.details
                ) from exc
        for key in keys:
            if key in lost:
                continue
            if key in failed:
                result.failed[key] = failed[key]
                result.failed_items += items[key]
                continue
            outcome, archive = plans[key]
            result.outcomes[key] = outcome
            result.counts[outcome] += 1
            if items[key] > 1:
                result.counts[MERGED] += items[key] - 1
            if archive is not None:
                archives.append(archive)
        return lost

    def _changed_since_read(self, read_versions: dict[str, Any], keys: Iterable[str]) -> set[str]:
        """Of the documents whose insert or guarded upsert hit a duplicate
        key, those changed (or created) by someone else since we read them:
        lost races.
        The others clash on another unique index (``info_code``): real errors."""
        wanted = list(keys)
        projection = dict.fromkeys(GUARD_FIELDS, 1)
        now = {
            doc["_id"]: _stamp(doc)
            for doc in self.articles.find({"_id": {"$in": wanted}}, projection)
        }
        return {key for key in wanted if now.get(key, MISSING) != read_versions[key]}

    def _archive(self, archives: list[Document], result: BatchResult) -> None:
        try:
            self.versions.insert_many(archives, ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                archive = archives[error["index"]]
                if error.get("code") == DUPLICATE_KEY:
                    logger.debug(
                        "Version %s of %s was already archived",
                        archive.get("version"),
                        archive.get("article_id"),
                    )
                    continue
                result.archive_failed[str(archive.get("article_id"))] = _describe(error)
            result.archived = exc.details.get("nInserted", 0)
        else:
            result.archived = len(archives)
