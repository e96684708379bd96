"""The store pipeline: articles into MongoDB, in batches, off the reactor
thread, and nothing lost when the database goes away.

The last pipeline (spider → loader → clean → validate → dedup → **store**).
Items are buffered and flushed as batches (by size, by age, at close); one
writer loop stores the batches in worker threads, one at a time. For each
batch (:mod:`newscrawl.storage.batches`):

1. prepare: make every document safe (escaped keys, plain values, schema
   types, size bound) or reject it;
2. write: articles merged (:mod:`newscrawl.storage.documents`), rejections
   (refused here, by the server's validator, or dropped by the validate
   pipeline) into ``articles_rejected``;
3. on a transient failure (connection reset, no server, not primary, write
   concern not satisfied), write again after a backoff, a few times;
4. still failing: the batch goes to the local journal
   (:mod:`newscrawl.storage.journal`) and the store is *offline*: further
   batches go straight to the journal, the crawl goes on, and the server is
   pinged every ``MONGO_RECONNECT_SECONDS``; when it answers, the journal is
   replayed (idempotently) before the next batch. A journal left at close is
   replayed by the next crawl on the same database, first thing.

A database unreachable *at start* still stops the crawl at once
(``store_unavailable``): nothing would ever be stored.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymongo
from itemadapter import ItemAdapter
from pymongo.errors import PyMongoError
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, DropItem, NotConfigured
from scrapy.utils.asyncio import CallLaterResult, call_later, run_in_thread, sleep
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.defer import Deferred

from newscrawl.pipelines.validate import InvalidArticle
from newscrawl.storage.batches import (
    BatchStore,
    Prepared,
    StoreResult,
    from_records,
    journal_records,
    prepare_batch,
)
from newscrawl.storage.client import (
    DEFAULT_CONNECT_TIMEOUT,
    ERROR_STAT,
    Store,
    data_dir,
    open_crawl_store,
)
from newscrawl.storage.documents import OUTCOMES, Document, to_document
from newscrawl.storage.errors import StorageUnavailable, is_transient
from newscrawl.storage.journal import Journal, journal_directory, other_journals
from newscrawl.storage.migrations import ensure_collections
from newscrawl.storage.rejected import STORE, VALIDATE, Rejection
from newscrawl.storage.sanitize import DEFAULT_MAX_BYTES
from newscrawl.storage.schema import load_schema
from newscrawl.storage.signals import articles_stored
from newscrawl.storage.writer import DEFAULT_MAX_ATTEMPTS

logger = logging.getLogger(__name__)

STATS = "newscrawl/store"
#: finish reason when the database cannot be used at start
STORE_UNAVAILABLE = "store_unavailable"


class UnstorableItem(DropItem):
    """The item cannot become a document (no key, a published_at that is not
    a datetime): a bug upstream. Dropped, and recorded in
    ``articles_rejected``."""


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique crawl-run id: UTC start time plus a random tail.

    >>> new_run_id(datetime(2024, 5, 1, 8, 30, tzinfo=UTC))[:17]
    '20240501T083000Z-'
    """
    stamp = (now or datetime.now(tz=UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before try ``attempt + 1`` (``attempt`` from 1):
    doubling from ``base``, at most ``cap``.

    >>> [backoff(n, 0.5, 4.0) for n in range(1, 6)]
    [0.5, 1.0, 2.0, 4.0, 4.0]
    """
    return float(min(cap, base * 2 ** (attempt - 1)))


def brief(exc: BaseException) -> str:
    """An error in one short line: pymongo's server selection errors append
    the whole topology description.

    >>> brief(ValueError("127.0.0.1:1: refused, Timeout: 1.0s, Topology Description: <...>"))
    'ValueError: 127.0.0.1:1: refused'
    """
    text = str(exc).split(", Timeout: ", 1)[0].split(", full error: ", 1)[0]
    return f"{type(exc).__name__}: {text[:300]}"


@dataclass
class Batch:
    """Items buffered together: article documents and rejections."""

    docs: list[Document] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.docs) + len(self.rejections)


class MongoPipeline:
    """Buffers articles and stores them in batches in a worker thread; keeps
    them in a local journal while the database cannot be reached.

    Settings:

    - ``MONGO_ENABLED`` (True): False raises NotConfigured (no store).
    - ``MONGO_URI`` (unset: env ``MONGO_URI``, else the embedded SecantusDB
      under ``NEWSCRAWL_DATA_DIR``), ``MONGO_DATABASE`` (``"newscrawl"``),
      ``MONGO_CONNECT_TIMEOUT`` (10 s; also how long one write waits for an
      unreachable server), ``MONGO_WRITE_CONCERN_W`` / ``_J``: see
      :mod:`newscrawl.storage.client`.
    - ``MONGO_BATCH_SIZE`` (100): items per bulk write.
    - ``MONGO_FLUSH_SECONDS`` (2.0): the longest an item waits in the buffer
      (0: only size and close flush).
    - ``MONGO_MAX_PENDING_BATCHES`` (3): more batches than this waiting make
      ``process_item`` wait (backpressure), unless the database is failing:
      then the extra batches go to the journal.
    - ``MONGO_WRITE_ATTEMPTS`` (5): tries per document when another writer
      keeps changing it.
    - ``MONGO_RETRY_TIMES`` (3), ``MONGO_RETRY_BACKOFF`` (0.5 s),
      ``MONGO_RETRY_BACKOFF_MAX`` (8 s): a batch that fails transiently is
      written again up to this many times, waiting backoff × 2ⁿ between.
    - ``MONGO_RECONNECT_SECONDS`` (5.0): while offline, how often the server
      is pinged.
    - ``MONGO_MAX_DOCUMENT_BYTES`` (8 MiB): larger documents are cut
      (``truncated: true``).
    - ``NEWSCRAWL_DATA_DIR`` (``.newscrawl``): the journal is in
      ``<dir>/journal/<server and database hash>/``.
    - ``NEWSCRAWL_RUN_ID`` (a new id per crawl): the run recorded in
      ``last_run_id``.

    Stats (``newscrawl/store/…``): ``inserted``, ``updated``, ``unchanged``,
    ``merged`` (items); ``batches``; ``rejected`` and ``rejected/<stage>``
    (``validate``, ``store``, ``server``); ``truncated``; ``retries`` (lost
    races); ``transient_errors`` (failed tries), ``outages``, ``journaled``
    and ``replayed`` (article documents), ``journal_pending`` (records left
    in the journal at close); ``write_errors`` (items lost: not stored, not
    journaled; archive failures); ``flush_seconds_max``; for the summary
    ``uri`` (password redacted), ``database``, ``embedded``, ``run_id``,
    ``error``. After each written batch it sends
    :data:`newscrawl.storage.signals.articles_stored`.
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
        self.retry_times = max(0, settings.getint("MONGO_RETRY_TIMES", 3))
        self.retry_backoff = settings.getfloat("MONGO_RETRY_BACKOFF", 0.5)
        self.retry_backoff_max = settings.getfloat("MONGO_RETRY_BACKOFF_MAX", 8.0)
        self.reconnect_seconds = max(0.1, settings.getfloat("MONGO_RECONNECT_SECONDS", 5.0))
        self.connect_timeout = settings.getfloat("MONGO_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT)
        self.max_bytes = settings.getint("MONGO_MAX_DOCUMENT_BYTES", DEFAULT_MAX_BYTES)
        self.data_dir = data_dir(settings)
        self.run_id = settings.get("NEWSCRAWL_RUN_ID") or new_run_id()
        self.schema = load_schema()
        self.store: Store | None = None
        self.batches: BatchStore | None = None
        self.journal: Journal | None = None
        self._buffer = Batch()
        self._pending: deque[Batch] = deque()
        self._draining = False
        self._drain_task: Deferred[None] | None = None
        self._waiters: list[Deferred[None]] = []
        self._timer: CallLaterResult | None = None
        self._probe_timer: CallLaterResult | None = None
        self._closing = False
        self._closed = False
        #: False while the server cannot be reached: batches go to the journal
        self._online = True
        #: the batch being written failed transiently and is being retried
        self._retrying = False
        self._replaying = False
        self._replay_due = False
        crawler.signals.connect(self._item_dropped, signal=signals.item_dropped)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MongoPipeline:
        if not crawler.settings.getbool("MONGO_ENABLED", True):
            raise NotConfigured("MONGO_ENABLED is False: articles are not stored")
        return cls(crawler)

    # -- Scrapy hooks ------------------------------------------------------

    async def open_spider(self) -> None:
        """Connect (starting the embedded server if needed), bring the
        collections up to date, find the journal; an unusable store closes
        the crawl at once with reason ``store_unavailable``."""
        try:
            self.store = await open_crawl_store(self.crawler)
            await run_in_thread(ensure_collections, self.store.db)
        except (StorageUnavailable, PyMongoError) as exc:
            message = str(exc)
            if self.store is not None and not isinstance(exc, StorageUnavailable):
                message = f"cannot prepare MongoDB at {self.store.uri}: {exc}"
            logger.error("Article store unavailable, closing the crawl: %s", message)
            self.stats.set_value(ERROR_STAT, message)
            await self._close_store()
            self.store = None
            raise CloseSpider(STORE_UNAVAILABLE) from exc
        store = self.store
        self.batches = BatchStore(store.db, max_attempts=self.max_attempts)
        self.journal = Journal(
            journal_directory(self.data_dir, store.target_id),
            label={"uri": store.uri, "database": store.db.name},
        )
        self.stats.set_value(f"{STATS}/uri", store.uri)
        self.stats.set_value(f"{STATS}/database", store.db.name)
        self.stats.set_value(f"{STATS}/embedded", store.embedded is not None)
        self.stats.set_value(f"{STATS}/run_id", self.run_id)
        logger.info(
            "Storing articles in %s, database %s (run %s, batches of %d)",
            store.uri,
            store.db.name,
            self.run_id,
            self.batch_size,
        )
        waiting = await run_in_thread(self.journal.count)
        if waiting:
            logger.info(
                "%d record(s) wait in the journal %s from an earlier run: replaying them first",
                waiting,
                self.journal.directory,
            )
            self._replay_due = True
            self._kick()
        for folder, files, target in await run_in_thread(other_journals, self.journal.directory):
            logger.warning(
                "%d journal file(s) in %s wait for another database (%s): a crawl storing "
                "there replays them",
                files,
                folder,
                target,
            )

    async def process_item(self, item: Any) -> Any:
        """Buffer the item; wait only when too many batches are queued and
        the database is keeping up (else the extra batches are journaled)."""
        if self.batches is None:
            raise UnstorableItem("the article store is not open")
        try:
            doc = to_document(item)
        except (TypeError, ValueError) as exc:
            raise UnstorableItem(f"cannot store item: {exc}") from exc
        self._buffer.docs.append(doc)
        self._buffered()
        while len(self._pending) > self.max_pending:
            if self._draining and (self._retrying or self._replaying or not self._online):
                await self._spill()
            else:
                await self._wait_for_batch()
        return item

    async def close_spider(self) -> None:
        """Write what is buffered and wait for every batch; if the database is
        still away, try it once more, else leave the journal for next time."""
        self._closing = True
        self._flush()
        await self._idle()
        if not self._online and self.store is not None:
            if await run_in_thread(self._ping):
                self._back_online()
                await self._idle()
        self._cancel_probe()
        if self.journal is not None:
            await run_in_thread(self.journal.seal)
            left = await run_in_thread(self.journal.count)
            self.stats.set_value(f"{STATS}/journal_pending", left)
            if left:
                logger.warning(
                    "%d record(s) wait in the journal %s (MongoDB at %s unreachable): the next "
                    "crawl on this database replays them",
                    left,
                    self.journal.directory,
                    self.store.uri if self.store is not None else "?",
                )
        if self.batches is not None:
            logger.info(
                "Store closed: %s",
                ", ".join(
                    f"{name} {self.stats.get_value(f'{STATS}/{name}', 0)}"
                    for name in (*OUTCOMES, "rejected", "journaled", "replayed", "write_errors")
                ),
            )
        self._closed = True
        await self._close_store()

    # -- rejections from other pipelines -------------------------------------

    def _item_dropped(self, item: Any, exception: BaseException, **kwargs: Any) -> None:
        """Record validation drops (and this pipeline's own) in
        ``articles_rejected``; other drops (duplicates, …) are not refusals."""
        if self.batches is None or self._closed:
            return
        if isinstance(exception, InvalidArticle):
            stage = VALIDATE
        elif isinstance(exception, UnstorableItem):
            stage = STORE
        else:
            return
        try:
            fields = ItemAdapter(item).asdict()
        except TypeError:
            fields = {"item": repr(item)[:10_000]}
        reason = str(exception)
        self._buffer.rejections.append(
            Rejection.of(fields, stage, type(exception).__name__, reason, self.run_id)
        )
        logger.debug("Recording the rejection of %s: %s", fields.get("url"), reason)
        self._buffered()

    # -- batching ----------------------------------------------------------

    def _buffered(self) -> None:
        if len(self._buffer) >= self.batch_size:
            self._flush()
        elif len(self._buffer) == 1 and self.flush_seconds > 0 and self._timer is None:
            self._timer = call_later(self.flush_seconds, self._flush_by_age)

    def _flush_by_age(self) -> None:
        self._timer = None
        self._flush()

    def _flush(self) -> None:
        """Queue the buffer as a batch and make sure the writer loop runs."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if len(self._buffer):
            self._pending.append(self._buffer)
            self._buffer = Batch()
        self._kick()

    def _kick(self) -> None:
        if self._draining or self.batches is None:
            return
        if self._pending or (self._replay_due and self._online):
            self._draining = True
            self._drain_task = deferred_from_coro(self._drain())

    async def _drain(self) -> None:
        """Replay the journal when due, then store queued batches one at a
        time, in order (never raises)."""
        try:
            while self._pending or (self._replay_due and self._online):
                if self._replay_due and self._online:
                    try:
                        await self._replay()
                    except Exception:  # a bug: the journal stays for the next start
                        logger.exception("Replaying the journal failed")
                if not self._pending:
                    continue
                batch = self._pending[0]
                try:
                    await self._store(batch)
                except Exception as exc:  # a bug: say so loudly, count the items lost
                    logger.exception("Storing a batch of %d item(s) failed", len(batch))
                    self._lost(batch.docs, exc)
                self._pending.popleft()
                self._notify()
        finally:
            self._draining = False
            self._notify()

    async def _store(self, batch: Batch) -> None:
        """Prepare, then write (with retries) or journal one batch."""
        self.stats.inc_value(f"{STATS}/batches")
        prepared = await self._prepare(batch)
        if prepared is None:
            return
        if self._online and await self._write(prepared) is not None:
            return
        await self._journal(prepared)

    async def _prepare(self, batch: Batch) -> Prepared | None:
        try:
            prepared = await run_in_thread(
                prepare_batch,
                batch.docs,
                batch.rejections,
                self.run_id,
                datetime.now(tz=UTC),
                self.schema,
                self.max_bytes,
            )
        except Exception as exc:  # a bug: say so loudly, count the items lost
            logger.exception("Could not prepare a batch of %d item(s)", len(batch))
            self._lost(batch.docs, exc)
            return None
        if prepared.truncated:
            self.stats.inc_value(f"{STATS}/truncated", prepared.truncated)
        return prepared

    async def _write(self, prepared: Prepared) -> StoreResult | None:
        """Write, retrying transient failures with backoff. None when it
        gave up (and the store is offline if the failure was transient)."""
        assert self.batches is not None
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await run_in_thread(self.batches.write, prepared)
            except Exception as exc:
                transient = is_transient(exc)
                if transient:
                    self.stats.inc_value(f"{STATS}/transient_errors")
                if transient and attempt <= self.retry_times and not self._closed:
                    delay = backoff(attempt, self.retry_backoff, self.retry_backoff_max)
                    logger.warning(
                        "Writing a batch of %d failed (%s); try %d of %d in %.1fs",
                        prepared.size, brief(exc), attempt + 1, self.retry_times + 1, delay,
                    )  # fmt: skip
                    self._retrying = True
                    self._notify()  # items waiting on backpressure may spill now
                    await sleep(delay)
                    continue
                self._retrying = False
                if transient:
                    self._go_offline(exc)
                else:
                    logger.error(
                        "Writing a batch of %d failed (%s: %s); it goes to the journal",
                        prepared.size,
                        type(exc).__name__,
                        exc,
                        exc_info=not isinstance(exc, PyMongoError),
                    )
                return None
            self._retrying = False
            self._record(result, prepared)
            return result

    async def _journal(self, prepared: Prepared) -> None:
        assert self.journal is not None
        try:
            await run_in_thread(self.journal.append, journal_records(prepared))
        except (OSError, ValueError, TypeError) as exc:
            logger.error(
                "Could not journal a batch of %d document(s) either: they are lost: %s",
                prepared.size,
                exc,
            )
            self._lost(prepared.docs, exc)
            return
        self.stats.inc_value(f"{STATS}/journaled", len(prepared.docs))
        logger.debug("Journaled %d article(s) to %s", len(prepared.docs), self.journal.directory)

    async def _spill(self) -> None:
        """The database is failing: journal every queued batch but the one
        being written, so the crawl does not wait for the retries."""
        spilled: list[Batch] = []
        while len(self._pending) > 1:
            spilled.append(self._pending.pop())
        self._notify()
        for batch in reversed(spilled):
            self.stats.inc_value(f"{STATS}/batches")
            prepared = await self._prepare(batch)
            if prepared is not None:
                await self._journal(prepared)
        self._replay_due = True  # once the database takes writes again

    # -- outages -----------------------------------------------------------

    def _go_offline(self, exc: Exception) -> None:
        if not self._online:
            return
        self._online = False
        self._notify()
        self.stats.inc_value(f"{STATS}/outages")
        uri = self.store.uri if self.store is not None else "?"
        logger.warning(
            "Cannot write to MongoDB at %s (%s): articles go to the journal %s until it "
            "answers again (checked every %gs)",
            uri,
            brief(exc),
            self.journal.directory if self.journal is not None else "?",
            self.reconnect_seconds,
        )
        self._schedule_probe()

    def _schedule_probe(self) -> None:
        if self._closed or self._probe_timer is not None:
            return
        self._probe_timer = call_later(self.reconnect_seconds, self._probe_now)

    def _probe_now(self) -> None:
        self._probe_timer = None
        probing = deferred_from_coro(self._probe())
        probing.addErrback(lambda failure: logger.error("Probe failed: %s", failure.value))

    async def _probe(self) -> None:
        if self._closed or self._online:
            return
        if await run_in_thread(self._ping):
            self._back_online()
        else:
            self._schedule_probe()

    def _ping(self) -> bool:
        """True when the server answers a ping within the connect timeout
        (blocking)."""
        if self.store is None or self._closed:
            return False
        try:
            with pymongo.timeout(self.connect_timeout):
                self.store.client.admin.command("ping")
        except PyMongoError as exc:
            logger.debug("MongoDB still unreachable: %s", exc)
            return False
        return True

    def _back_online(self) -> None:
        if self._online:
            return
        self._online = True
        logger.warning(
            "MongoDB at %s answers again: replaying the journal",
            self.store.uri if self.store is not None else "?",
        )
        self._replay_due = True
        self._kick()

    def _cancel_probe(self) -> None:
        if self._probe_timer is not None:
            self._probe_timer.cancel()
            self._probe_timer = None

    # -- replay ------------------------------------------------------------

    async def _replay(self) -> None:
        """Write every journal file not in use, oldest first, deleting each
        once all of it is stored; stop at the first transient failure (the
        rest waits for the server again)."""
        assert self.journal is not None
        self._replay_due = False
        self._replaying = True
        try:
            await run_in_thread(self.journal.seal)
            for path in await run_in_thread(self.journal.files):
                if not self._online:
                    return
                await self._replay_file(path)
        finally:
            self._replaying = False

    async def _replay_file(self, path: Path) -> None:
        assert self.journal is not None
        journal = self.journal
        with journal.claim(path) as mine:
            if not mine:
                logger.debug("Journal file %s is in use by another process", path)
                return
            chunks: Iterator[list[Document]] = journal.read(path, self.batch_size)
            replayed = 0
            while True:
                records = await run_in_thread(next, chunks, None)
                if records is None:
                    break
                for prepared in from_records(records):
                    if await self._write(prepared) is None:
                        logger.warning(
                            "Replay of %s stopped after %d article(s); it is kept and replayed "
                            "again",
                            path,
                            replayed,
                        )
                        return
                    replayed += len(prepared.docs)
                    self.stats.inc_value(f"{STATS}/replayed", len(prepared.docs))
            await run_in_thread(journal.remove, path)
            logger.info("Replayed %d article(s) from %s", replayed, path)

    # -- results -----------------------------------------------------------

    def _record(self, result: StoreResult, prepared: Prepared) -> None:
        batch = result.batch
        for outcome, count in batch.counts.items():
            self.stats.inc_value(f"{STATS}/{outcome}", count)
        self.stats.max_value(f"{STATS}/flush_seconds_max", round(batch.seconds, 3))
        if batch.archived:
            self.stats.inc_value(f"{STATS}/archived", batch.archived)
        if batch.retries:
            self.stats.inc_value(f"{STATS}/retries", batch.retries)
        if batch.archive_failed:
            self.stats.inc_value(f"{STATS}/write_errors", len(batch.archive_failed))
        for stage, count in result.rejected.items():
            self.stats.inc_value(f"{STATS}/rejected", count)
            self.stats.inc_value(f"{STATS}/rejected/{stage}", count)
        for doc in prepared.rejections:
            if doc.get("stage") != VALIDATE:
                logger.warning(
                    "Rejected article %s (%s): %s; kept in articles_rejected",
                    doc.get("article_id") or doc.get("url"),
                    doc.get("stage"),
                    doc.get("reason"),
                )
        for key, reason in sorted(result.refused.items()):
            logger.warning("The database refused article %s: %s", key, reason)
        for key, reason in sorted(batch.archive_failed.items()):
            logger.error("Previous version of article %s was not archived: %s", key, reason)
        logger.debug("Stored a batch in %.3fs: %s", batch.seconds, dict(batch.counts) or "nothing")
        self._signal(batch.outcomes, batch.failed)

    def _lost(self, docs: list[Document], exc: BaseException) -> None:
        keys = sorted({str(doc.get("_id")) for doc in docs})
        self.stats.inc_value(f"{STATS}/write_errors", len(docs))
        self._signal({}, dict.fromkeys(keys, str(exc)))

    def _signal(self, outcomes: dict[str, str], failed: dict[str, str]) -> None:
        self.crawler.signals.send_catch_log(
            signal=articles_stored, outcomes=outcomes, failed=failed
        )

    # -- waiting -----------------------------------------------------------

    async def _idle(self) -> None:
        """Wait until nothing is queued or being written."""
        while self._pending or self._draining:
            await self._wait_for_batch()

    async def _wait_for_batch(self) -> None:
        if self._pending and not self._draining:
            self._kick()
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        await maybe_deferred_to_future(waiter)

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    async def _close_store(self) -> None:
        """Release the store (``self.store`` stays readable, e.g. its ``uri``)."""
        store, self.batches = self.store, None
        if store is not None:
            # may stop the embedded server: seconds, so not on the reactor thread
            await run_in_thread(store.close)
