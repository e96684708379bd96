"""The MongoDB write path against the naive way, into the same server.

The same documents (the articles of the saved pages, made by the product's
own code) are written three ways into fresh databases prepared alike
(collections, indexes and validator from ``ensure_collections``):

``writer``        :class:`newscrawl.storage.writer.ArticleWriter`, batches of
                  ``MONGO_BATCH_SIZE`` (one read + one bulk write per batch:
                  what the store pipeline runs in its worker thread)
``insert_one``    one ``insert_one`` per document, in a plain loop (the Scrapy
                  docs' MongoPipeline), of the documents the writer would
                  store (store fields added before the clock starts)
``insert_many``   ``insert_many(ordered=False)`` per batch: the floor of the
                  bulk path, for scale
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import MongoClient
from pymongo.database import Database

from newscrawl.storage.documents import Document, merge
from newscrawl.storage.schema import ARTICLES, ensure_collections
from newscrawl.storage.writer import ArticleWriter

logger = logging.getLogger(__name__)


def _batches(docs: Sequence[Document], size: int) -> list[Sequence[Document]]:
    """``docs`` cut in batches of ``size``.

    >>> [len(b) for b in _batches([{}] * 5, 2)]
    [2, 2, 1]
    """
    return [docs[i : i + size] for i in range(0, len(docs), size)]


def _fresh(client: MongoClient[Document], prefix: str) -> Database[Document]:
    db = client[f"{prefix}_{uuid.uuid4().hex[:8]}"]
    ensure_collections(db)
    return db


def _timed(label: str, db: Database[Document], write: Callable[[], None], count: int) -> float:
    started = time.perf_counter()
    write()
    seconds = time.perf_counter() - started
    stored = db[ARTICLES].count_documents({})
    if stored != count:
        raise AssertionError(f"{label}: {stored} documents stored, expected {count}")
    return seconds


def measure_writes(uri: str, docs: Sequence[Document], batch_size: int = 100) -> dict[str, Any]:
    """Documents per second of each write path (see the module doc); the
    databases are dropped afterwards."""
    unique = list({doc["_id"]: doc for doc in docs}.values())
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    now = datetime.now(tz=UTC)
    final = [merge(None, doc, run_id, now)[0] for doc in unique]
    client: MongoClient[Document] = MongoClient(uri, tz_aware=True)
    results: dict[str, Any] = {"documents": len(unique), "batch_size": batch_size}
    made: list[Database[Document]] = []
    try:
        db = _fresh(client, "bench_writer")
        made.append(db)
        writer = ArticleWriter(db, run_id)

        def with_writer() -> None:
            for batch in _batches(unique, batch_size):
                result = writer.write(batch)
                if result.failed:
                    raise AssertionError(f"writer failed: {dict(list(result.failed.items())[:3])}")

        naive = _fresh(client, "bench_insert_one")
        made.append(naive)

        def with_insert_one() -> None:
            for doc in final:
                naive[ARTICLES].insert_one(dict(doc))

        many = _fresh(client, "bench_insert_many")
        made.append(many)

        def with_insert_many() -> None:
            for batch in _batches(final, batch_size):
                many[ARTICLES].insert_many([dict(doc) for doc in batch], ordered=False)

        for label, target, write in (
            ("writer", db, with_writer),
            ("insert_one", naive, with_insert_one),
            ("insert_many", many, with_insert_many),
        ):
            seconds = _timed(label, target, write, len(unique))
            results[label] = {
                "seconds": round(seconds, 3),
                "docs_per_second": round(len(unique) / seconds, 1),
            }
            logger.info("write path %s: %.1f docs/s", label, len(unique) / seconds)
    finally:
        for db in made:
            client.drop_database(db.name)
        client.close()
    if results.get("writer") and results.get("insert_one"):
        results["writer_over_insert_one"] = round(
            results["writer"]["docs_per_second"] / results["insert_one"]["docs_per_second"], 2
        )
    return results
