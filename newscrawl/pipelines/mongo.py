"""The store pipeline: articles into MongoDB, in batches, off the reactor thread.

The last pipeline (spider → loader → clean → validate → dedup → **store**).
Items are buffered and written by :class:`~newscrawl.storage.writer.ArticleWriter`
in a worker thread, one batch at a time and in order; see
:mod:`newscrawl.storage.documents` for what a new sighting does to a stored
article (inserted / merged / unchanged / updated).
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

from itemadapter import ItemAdapter
from pymongo.errors import ConnectionFailure, PyMongoError
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, DropItem, NotConfigured
from scrapy.utils.asyncio import CallLaterResult, call_later, run_in_thread
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.defer import Deferred

from newscrawl.storage.client import Store, open_store
from newscrawl.storage.documents import OUTCOMES, Document, to_document
from newscrawl.storage.errors import StorageUnavailable
from newscrawl.storage.schema import ensure_collections
from newscrawl.storage.signals import articles_stored
from newscrawl.storage.writer import DEFAULT_MAX_ATTEMPTS, ArticleWriter, BatchResult

logger = logging.getLogger(__name__)

STATS = "newscrawl/store"
#: finish reason when the database cannot be used
STORE_UNAVAILABLE = "store_unavailable"


class UnstorableItem(DropItem):
    """The item cannot become a document (no key, a published_at that is not
    a datetime): a bug upstream, so it is logged as a drop, not stored."""


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique crawl-run id: UTC start time plus a random tail.

    >>> new_run_id(datetime(2024, 5, 1, 8, 30, tzinfo=UTC))[:17]
    '20240501T083000Z-'
    """
    stamp = (now or datetime.now(tz=UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


class MongoPipeline:
    """Buffers articles and stores them in batches in a worker thread.

    Settings:

    - ``MONGO_ENABLED`` (True): False raises NotConfigured (no store).
    - ``MONGO_URI`` (unset: env ``MONGO_URI``, else the embedded SecantusDB
      under ``NEWSCRAWL_DATA_DIR``), ``MONGO_DATABASE`` (``"newscrawl"``),
      ``MONGO_CONNECT_TIMEOUT``, ``MONGO_WRITE_CONCERN_W`` / ``_J``: see
      :mod:`newscrawl.storage.client`.
    - ``MONGO_BATCH_SIZE`` (100): items per bulk write.
    - ``MONGO_FLUSH_SECONDS`` (2.0): the longest an item waits in the buffer
      (0: only size and close flush).
    - ``MONGO_MAX_PENDING_BATCHES`` (3): more batches than this waiting to be
      written make ``process_item`` wait (backpressure).
    - ``MONGO_WRITE_ATTEMPTS`` (5): tries per document when another writer
      keeps changing it.
    - ``NEWSCRAWL_RUN_ID`` (a new id per crawl): the run recorded in
      ``last_run_id``.

    Stats: ``newscrawl/store/{inserted,updated,unchanged,merged}`` (items),
    ``…/batches``, ``…/write_errors`` (items not stored, archive failures),
    ``…/archived``, ``…/retries``, ``…/flush_seconds_max``, and for the crawl
    summary ``…/uri`` (password redacted), ``…/database``, ``…/embedded``,
    ``…/run_id``, ``…/error`` (why the store could not be opened).
    After each batch it sends :data:`newscrawl.storage.signals.articles_stored`.
    """

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        assert crawler.stats is not None
        self.stats = crawler.stats
        self.batch_size = max(1, settings.getint("MONGO_BATCH_SIZE", 100))
        self.flush_seconds = settings.getfloat("MONGO_FLUSH_SECONDS", 2.0)
        self.max_pending = max(1, settings.getint("MONGO_MAX_PENDING_BATCHES", 3))
        self.max_attempts = settings.getint("MONGO_WRITE_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)
        self.run_id = settings.get("NEWSCRAWL_RUN_ID") or new_run_id()
        self.store: Store | None = None
        self.writer: ArticleWriter | None = None
        self._buffer: list[Document] = []
        self._pending: deque[list[Document]] = deque()
        self._draining = False
        self._drain_task: Deferred[None] | None = None
        self._waiters: list[Deferred[None]] = []
        self._timer: CallLaterResult | None = None
        self._closing = False
        #: the connection failure that lost the database mid-crawl
        self._lost: Exception | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MongoPipeline:
        if not crawler.settings.getbool("MONGO_ENABLED", True):
            raise NotConfigured("MONGO_ENABLED is False: articles are not stored")
        return cls(crawler)

    # -- Scrapy hooks ------------------------------------------------------

    async def open_spider(self) -> None:
        """Connect (starting the embedded server if needed) and create the
        collections; an unusable store closes the crawl at once with reason
        ``store_unavailable`` and the cause logged as an error."""
        try:
            self.store = await run_in_thread(open_store, self.crawler.settings)
            await run_in_thread(ensure_collections, self.store.db)
        except (StorageUnavailable, PyMongoError) as exc:
            message = str(exc)
            if self.store is not None and not isinstance(exc, StorageUnavailable):
                message = f"cannot prepare MongoDB at {self.store.uri}: {exc}"
            logger.error("Article store unavailable, closing the crawl: %s", message)
            self.stats.set_value(f"{STATS}/error", message)
            await self._close_store()
            self.store = None
            raise CloseSpider(STORE_UNAVAILABLE) from exc
        self.writer = ArticleWriter(self.store.db, self.run_id, max_attempts=self.max_attempts)
        self.stats.set_value(f"{STATS}/uri", self.store.uri)
        self.stats.set_value(f"{STATS}/database", self.store.db.name)
        self.stats.set_value(f"{STATS}/embedded", self.store.embedded is not None)
        self.stats.set_value(f"{STATS}/run_id", self.run_id)
        logger.info(
            "Storing articles in %s, database %s (run %s, batches of %d)",
            self.store.uri,
            self.store.db.name,
            self.run_id,
            self.batch_size,
        )

    async def process_item(self, item: Any) -> Any:
        """Buffer the item; wait only when too many batches are queued."""
        if self.writer is None:
            raise UnstorableItem("the article store is not open")
        try:
            doc = to_document(ItemAdapter(item))
        except (TypeError, ValueError) as exc:
            raise UnstorableItem(f"cannot store item: {exc}") from exc
        self._buffer.append(doc)
        if len(self._buffer) >= self.batch_size:
            self._flush()
        elif len(self._buffer) == 1 and self.flush_seconds > 0 and self._timer is None:
            self._timer = call_later(self.flush_seconds, self._flush_by_age)
        while len(self._pending) > self.max_pending:
            await self._wait_for_batch()
        return item

    async def close_spider(self) -> None:
        """Write what is buffered, wait for every batch, release the store."""
        self._closing = True
        self._flush()
        while self._pending or self._draining:
            await self._wait_for_batch()
        if self.writer is not None:
            logger.info(
                "Store closed: %s",
                ", ".join(
                    f"{name} {self.stats.get_value(f'{STATS}/{name}', 0)}"
                    for name in (*OUTCOMES, "write_errors")
                ),
            )
        await self._close_store()

    # -- batching ----------------------------------------------------------

    def _flush_by_age(self) -> None:
        self._timer = None
        self._flush()

    def _flush(self) -> None:
        """Queue the buffer as a batch and make sure the writer loop runs."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._buffer:
            self._pending.append(self._buffer)
            self._buffer = []
        if self._pending and not self._draining:
            self._draining = True
            self._drain_task = deferred_from_coro(self._drain())

    async def _drain(self) -> None:
        """Write queued batches one at a time, in order (never raises)."""
        try:
            while self._pending:
                await self._write(self._pending[0])
                self._pending.popleft()
                self._notify()
        finally:
            self._draining = False
            self._notify()

    async def _write(self, batch: list[Document]) -> None:
        assert self.writer is not None
        self.stats.inc_value(f"{STATS}/batches")
        if self._lost is not None:
            # the server already failed to answer for MONGO_CONNECT_TIMEOUT:
            # fail the rest at once instead of waiting that long per batch
            self._batch_failed(batch, self._lost)
            return
        try:
            result = await run_in_thread(self.writer.write, batch)
        except Exception as exc:
            self._batch_failed(batch, exc)
            if isinstance(exc, ConnectionFailure):
                self._lost = exc
                self._store_lost(exc)
            return
        self._record(result)

    def _batch_failed(self, batch: list[Document], exc: Exception) -> None:
        keys = sorted({doc["_id"] for doc in batch})
        logger.error(
            "Could not store a batch of %d item(s), articles %s: %s",
            len(batch),
            keys,
            exc,
            exc_info=not isinstance(exc, PyMongoError),
        )
        self.stats.inc_value(f"{STATS}/write_errors", len(batch))
        self._signal({}, dict.fromkeys(keys, str(exc)))

    def _record(self, result: BatchResult) -> None:
        for outcome, count in result.counts.items():
            self.stats.inc_value(f"{STATS}/{outcome}", count)
        self.stats.max_value(f"{STATS}/flush_seconds_max", round(result.seconds, 3))
        if result.archived:
            self.stats.inc_value(f"{STATS}/archived", result.archived)
        if result.retries:
            self.stats.inc_value(f"{STATS}/retries", result.retries)
        errors = result.failed_items + len(result.archive_failed)
        if errors:
            self.stats.inc_value(f"{STATS}/write_errors", errors)
        for key, reason in sorted(result.failed.items()):
            logger.error("Article %s was not stored: %s", key, reason)
        for key, reason in sorted(result.archive_failed.items()):
            logger.error("Previous version of article %s was not archived: %s", key, reason)
        logger.debug(
            "Stored a batch in %.3fs: %s", result.seconds, dict(result.counts) or "nothing"
        )
        self._signal(result.outcomes, result.failed)

    def _signal(self, outcomes: dict[str, str], failed: dict[str, str]) -> None:
        self.crawler.signals.send_catch_log(
            signal=articles_stored, outcomes=outcomes, failed=failed
        )

    def _store_lost(self, exc: Exception) -> None:
        """The server stopped answering mid-crawl: every further item would be
        lost too, so close the crawl (once) instead of crawling on."""
        uri = self.store.uri if self.store is not None else "?"
        if self.stats.get_value(f"{STATS}/error") is None:
            self.stats.set_value(f"{STATS}/error", f"lost MongoDB at {uri}: {exc}")
        if self._closing or self.crawler.engine is None:
            return
        self._closing = True
        logger.error("Lost the article store at %s, closing the crawl", uri)
        closing = deferred_from_coro(
            self.crawler.engine.close_spider_async(reason=STORE_UNAVAILABLE)
        )
        closing.addErrback(
            lambda failure: logger.error("Could not close the crawl: %s", failure.value)
        )

    async def _wait_for_batch(self) -> None:
        if self._pending and not self._draining:
            self._flush()
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        await maybe_deferred_to_future(waiter)

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    async def _close_store(self) -> None:
        """Release the store (``self.store`` stays readable, e.g. its ``uri``)."""
        store, self.writer = self.store, None
        if store is not None:
            # may stop the embedded server: seconds, so not on the reactor thread
            await run_in_thread(store.close)
