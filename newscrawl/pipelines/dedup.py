"""DedupPipeline: one record per story.

Items with the same key (one article reached through several URLs or
categories) are passed on: the store merges their ``urls`` and
``categories`` into one document; this pipeline counts them.

Articles under different keys that tell the same story are linked, never
dropped: an identical normalised body (exact duplicate) or a near copy
(MinHash over character n-grams, LSH: :mod:`newscrawl.dedup`) gets
``duplicate_of`` = the ``_id`` of the earliest-published article of its
cluster. The index's entries are in MongoDB, its band table in this
process's memory (loaded when the spider opens). The index is fed with an
article once the store has written it (the store's ``articles_stored``
signal), in the store's batches, off the reactor thread; the same signal
re-applies ``duplicate_of`` to documents the store has just rewritten.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from pymongo.errors import PyMongoError
from scrapy import signals
from scrapy.exceptions import CloseSpider
from scrapy.utils.asyncio import run_in_thread
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.defer import Deferred

from newscrawl.dedup.index import DuplicateIndex, Entry, LinkResult, make_entries
from newscrawl.dedup.minhash import (
    DEFAULT_NGRAM,
    DEFAULT_NUM_PERM,
    DEFAULT_THRESHOLD,
    Scheme,
    make_scheme,
)
from newscrawl.extract.pool import ParsePool
from newscrawl.storage.client import Store, data_dir, open_crawl_store
from newscrawl.storage.errors import StorageUnavailable
from newscrawl.storage.signals import articles_stored

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

STATS = "newscrawl/dedup"
#: finish reason when the database cannot be used (the store pipeline's too)
STORE_UNAVAILABLE = "store_unavailable"
DEFAULT_MIN_CHARS = 100
DEFAULT_MAX_PENDING_JOBS = 3


@dataclass
class _Job:
    """Work for the index: stored articles to index (key -> body, published_at)
    and stored keys whose ``duplicate_of`` must be re-applied."""

    articles: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)
    stored: set[str] = field(default_factory=set)

    def absorb(self, other: _Job) -> None:
        self.articles.update(other.articles)
        self.stored |= other.stored


def scheme_from_settings(settings: BaseSettings) -> Scheme:
    """The MinHash/LSH scheme the ``NEWSCRAWL_NEARDUP_*`` settings name."""
    return make_scheme(
        threshold=settings.getfloat("NEWSCRAWL_NEARDUP_THRESHOLD", DEFAULT_THRESHOLD),
        num_perm=settings.getint("NEWSCRAWL_NEARDUP_NUM_PERM", DEFAULT_NUM_PERM),
        ngram=settings.getint("NEWSCRAWL_NEARDUP_NGRAM", DEFAULT_NGRAM),
    )


class DedupPipeline:
    """Counts articles met again and links duplicates under other keys.

    Settings:

    - ``NEWSCRAWL_NEARDUP_ENABLED`` (True): False keeps only the count of
      articles met again (no index, no ``duplicate_of``). Linking also needs
      the store (``MONGO_ENABLED``).
    - ``NEWSCRAWL_NEARDUP_THRESHOLD`` (0.5): estimated Jaccard similarity of
      the bodies' character n-grams from which two articles are one story.
    - ``NEWSCRAWL_NEARDUP_NGRAM`` (5): characters per n-gram.
    - ``NEWSCRAWL_NEARDUP_NUM_PERM`` (128): MinHash permutations.
    - ``NEWSCRAWL_NEARDUP_MIN_CHARS`` (100): shorter normalised bodies are
      not indexed (neither exact nor near duplicates).
    - ``NEWSCRAWL_NEARDUP_MAX_PENDING`` (3): index jobs waiting before
      ``process_item`` waits (backpressure).
    - ``NEWSCRAWL_NEARDUP_SNAPSHOT`` (True): save the band table under
      ``NEWSCRAWL_DATA_DIR/dedup`` when the spider closes, so that the next
      run reads from MongoDB only what was indexed since; False: every run
      reads the whole index.
    - ``MONGO_*``: the database (:func:`newscrawl.storage.client.open_store`).

    Stats: ``newscrawl/dedup/merged`` (an article met again in this run),
    ``…/exact`` and ``…/near`` (articles of this run that matched another
    article: identical normalised body / near copy), ``…/indexed``,
    ``…/unchanged`` (already indexed with the same text), ``…/short`` (not
    indexed), ``…/candidates``, ``…/read`` (entries other processes
    added, read into the band table), ``…/clusters_merged``,
    ``…/articles_linked`` (``duplicate_of`` written), ``…/errors``,
    ``…/loaded``, ``…/restored`` (from the snapshot) and
    ``…/load_seconds`` (the band table at open),
    ``…/table_bytes`` (its size at the end), ``…/batch_seconds_max``,
    ``…/seconds`` (time spent by the index).
    """

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        assert crawler.stats is not None
        self.crawler = crawler
        self.stats = crawler.stats
        self.enabled = settings.getbool("NEWSCRAWL_NEARDUP_ENABLED", True)
        if self.enabled and not settings.getbool("MONGO_ENABLED", True):
            logger.info("MONGO_ENABLED is False: duplicates are not linked (nothing is stored)")
            self.enabled = False
        self.scheme = scheme_from_settings(settings) if self.enabled else None
        self.min_chars = settings.getint("NEWSCRAWL_NEARDUP_MIN_CHARS", DEFAULT_MIN_CHARS)
        self.max_pending = max(
            1, settings.getint("NEWSCRAWL_NEARDUP_MAX_PENDING", DEFAULT_MAX_PENDING_JOBS)
        )
        self.snapshot_dir: Path | None = None
        if settings.getbool("NEWSCRAWL_NEARDUP_SNAPSHOT", True):
            self.snapshot_dir = data_dir(settings) / "dedup"
        #: body length of every key met in this run (the store keeps the longer body)
        self.seen: dict[str, int] = {}
        #: articles waiting for the store to write them
        self._pending: dict[str, tuple[str, datetime | None]] = {}
        self._jobs: deque[_Job] = deque()
        self._draining = False
        self._waiters: list[Deferred[None]] = []
        self.store: Store | None = None
        self.index: DuplicateIndex | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupPipeline:
        pipeline = cls(crawler)
        if pipeline.enabled:
            crawler.signals.connect(pipeline.articles_stored, signal=articles_stored)
            crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    # -- Scrapy hooks ------------------------------------------------------

    async def open_spider(self) -> None:
        """Open the database and the index (its band table loaded into
        memory); an unusable store closes the crawl (reason
        ``store_unavailable``)."""
        if not self.enabled or self.scheme is None:
            return
        try:
            self.store = await open_crawl_store(self.crawler)
            index = DuplicateIndex(self.store.db, self.scheme, snapshot_dir=self.snapshot_dir)
            await run_in_thread(index.ensure)
            loaded = await run_in_thread(index.open)
        except (StorageUnavailable, PyMongoError) as exc:
            logger.error("Duplicate index unavailable, closing the crawl: %s", exc)
            await self._close_store()
            raise CloseSpider(STORE_UNAVAILABLE) from exc
        self.index = index
        self.stats.set_value(f"{STATS}/loaded", loaded.entries)
        self.stats.set_value(f"{STATS}/restored", loaded.restored)
        self.stats.set_value(f"{STATS}/load_seconds", round(loaded.seconds, 3))
        logger.info(
            "Linking duplicates: %s, threshold %.2f, bodies of %d+ characters; "
            "%d indexed articles loaded (%d from the last run's snapshot) in %.1f s "
            "(%.1f MB in memory)",
            self.scheme.id,
            self.scheme.threshold,
            self.min_chars,
            loaded.entries,
            loaded.restored,
            loaded.seconds,
            index.memory_bytes / 1e6,
        )

    async def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        key = adapter["key"]
        body = adapter.get("body") or ""
        known = self.seen.get(key)
        if known is not None:
            self.stats.inc_value(f"{STATS}/merged")
            logger.debug("Article %s met again: urls and categories merged", key)
        if known is None or len(body) > known:
            self.seen[key] = len(body)
            if self.index is not None:
                self._pending[key] = (body, adapter.get("published_at"))
        while len(self._jobs) > self.max_pending:
            await self._wait_for_job()
        return item

    def articles_stored(self, outcomes: dict[str, str], failed: dict[str, str]) -> None:
        """The store wrote a batch: index its new articles, re-link all of it."""
        for key in failed:
            self._pending.pop(key, None)
        if self.index is None or not outcomes:
            return
        job = _Job(stored=set(outcomes))
        for key in outcomes:
            article = self._pending.pop(key, None)
            if article is not None:
                job.articles[key] = article
        self._jobs.append(job)
        if not self._draining:
            self._draining = True
            deferred_from_coro(self._drain())

    async def close_spider(self) -> None:
        """Nothing to do yet: the store writes its last batches now, and the
        index follows them (see :meth:`spider_closed`)."""

    async def spider_closed(self) -> None:
        """After every pipeline closed: finish the index's jobs, record the
        index's writer as closed, release the store."""
        while self._jobs or self._draining:
            await self._wait_for_job()
        if self._pending:
            logger.debug("%d articles were never stored: not indexed", len(self._pending))
            self._pending.clear()
        index = self.index
        if index is not None:
            self.stats.set_value(f"{STATS}/table_bytes", index.memory_bytes)
            try:
                await run_in_thread(index.close)
            except PyMongoError as exc:
                logger.warning("Could not record the duplicate index's last batch: %s", exc)
        await self._close_store()

    # -- jobs -------------------------------------------------------------

    async def _drain(self) -> None:
        """Run queued jobs one at a time, merging those that waited (never raises)."""
        try:
            while self._jobs:
                job = self._jobs.popleft()
                while self._jobs:
                    job.absorb(self._jobs.popleft())
                await self._run(job)
                self._notify()
        finally:
            self._draining = False
            self._notify()

    async def _run(self, job: _Job) -> None:
        index = self.index
        if index is None:
            return
        started = time.monotonic()
        try:
            entries, short = await self._entries(job)
            result = await run_in_thread(index.process, entries, job.stored)
        except PyMongoError as exc:
            # nothing is lost: an article not indexed, or left pending, is
            # indexed and linked again when it is next seen
            logger.warning(
                "Duplicates of %d article(s) not linked for now (database error): %s",
                len(job.articles) or len(job.stored),
                exc,
            )
            self.stats.inc_value(f"{STATS}/errors")
            return
        except Exception:
            logger.exception("Could not index or link %d article(s)", len(job.articles))
            self.stats.inc_value(f"{STATS}/errors")
            return
        seconds = time.monotonic() - started
        self._record(result, short, seconds)

    async def _entries(self, job: _Job) -> tuple[list[Entry], int]:
        """The signatures of the job's articles: in the spider's parse
        process when it has one (``NEWSCRAWL_PARSE_PROCESSES``), else in a
        thread. Either way off the crawl thread, but a thread holds the GIL
        the crawl thread needs: ~170 µs per article."""
        assert self.scheme is not None
        articles = [(key, body, at) for key, (body, at) in job.articles.items()]
        if not articles:
            return [], 0
        pool = getattr(self.crawler.spider, "reader", None)
        if isinstance(pool, ParsePool) and pool.offloaded:
            return await pool.entries(articles, self.scheme, self.min_chars)
        return await run_in_thread(make_entries, articles, self.scheme, self.min_chars)

    def _record(self, result: LinkResult, short: int, seconds: float) -> None:
        counts = {
            "exact": result.exact,
            "near": result.near,
            "indexed": result.indexed,
            "unchanged": result.unchanged,
            "short": short,
            "candidates": result.candidates,
            "read": result.read,
            "clusters_merged": len(result.merges),
            "articles_linked": result.articles_changed,
        }
        for name, count in counts.items():
            if count:
                self.stats.inc_value(f"{STATS}/{name}", count)
        total = float(self.stats.get_value(f"{STATS}/seconds", 0.0)) + seconds
        self.stats.set_value(f"{STATS}/seconds", round(total, 3))
        self.stats.max_value(f"{STATS}/batch_seconds_max", round(seconds, 3))
        for merge in result.merges:
            logger.debug("Duplicates: %s now point at %s", sorted(merge.old_roots), merge.root)

    async def _wait_for_job(self) -> None:
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        await maybe_deferred_to_future(waiter)

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    async def _close_store(self) -> None:
        store, self.store, self.index = self.store, None, None
        if store is not None:
            await run_in_thread(store.close)
