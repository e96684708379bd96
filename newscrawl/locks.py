"""Leases in MongoDB: at most one holder per name, across processes and machines.

One document per lock in the ``locks`` collection::

    {"_id": "crawl:finews", "owner": "host:pid:uuid", "expires_at": <date>,
     "acquired_at": <date>, "renewed_at": <date>, "token": 7}

Taking it is one atomic ``find_one_and_update`` on ``_id`` with upsert: it
matches only a lock that is free (no owner), expired, or already ours; when
another owner holds it, the upsert's insert collides with the existing
``_id`` (duplicate key) and the lock is not taken. Plain pymongo, no
transactions: it works on any MongoDB-wire server. ``token`` grows by one at
every acquisition (a fencing token: run records carry it).

The holder renews the lease well before it expires (every third of it); a
holder that dies leaves a lock that expires and can then be taken. Expiry
compares times written by different machines' clocks: keep the lease much
longer than their skew (a minute against seconds).

:class:`MongoLock` is the lock; :class:`CrawlLock` an extension that makes a
crawl hold its site's lock (for crawls not started by ``newscrawl schedule``).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError
from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, NotConfigured
from scrapy.utils.asyncio import run_in_thread
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from newscrawl.storage.client import Store, open_crawl_store
from newscrawl.storage.errors import StorageUnavailable

logger = logging.getLogger(__name__)

LOCKS = "locks"
DEFAULT_TTL = timedelta(seconds=60)
#: finish reasons of a crawl under :class:`CrawlLock`
LOCKED = "locked"
LOCK_LOST = "lock_lost"
LOCK_UNAVAILABLE = "lock_unavailable"


def new_owner() -> str:
    """A name for this process that no other process uses: host, pid and a random tail.

    >>> owner = new_owner()
    >>> owner.count(":"), owner.split(":")[1] == str(os.getpid())
    (2, True)
    """
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def crawl_lock_name(site: str) -> str:
    """The lock that keeps two crawls of one site apart.

    >>> crawl_lock_name("finews")
    'crawl:finews'
    """
    return f"crawl:{site}"


@dataclass
class Lease:
    """What the holder knows about the lock it holds."""

    name: str
    owner: str
    token: int
    expires_at: datetime


class MongoLock:
    """One named lock in ``db.locks``, for one owner.

    >>> # lock = MongoLock(db, "crawl:finews", ttl=timedelta(seconds=60))
    >>> # if lock.acquire(): ... lock.renew() ... lock.release()
    """

    def __init__(
        self,
        db: Database[dict[str, Any]],
        name: str,
        *,
        owner: str | None = None,
        ttl: timedelta = DEFAULT_TTL,
    ) -> None:
        if ttl <= timedelta(0):
            raise ValueError(f"a lock needs a positive lease, got {ttl}")
        self.collection: Collection[dict[str, Any]] = db[LOCKS]
        self.name = name
        self.owner = owner or new_owner()
        self.ttl = ttl
        self.lease: Lease | None = None

    def acquire(self) -> bool:
        """Take the lock if it is free, expired or ours; False if someone else holds it."""
        now = datetime.now(tz=UTC)
        free = {
            "_id": self.name,
            "$or": [{"owner": None}, {"expires_at": {"$lte": now}}, {"owner": self.owner}],
        }
        update = {
            "$set": {
                "owner": self.owner,
                "expires_at": now + self.ttl,
                "acquired_at": now,
                "renewed_at": now,
            },
            "$inc": {"token": 1},
        }
        try:
            doc = self.collection.find_one_and_update(
                free, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:
            self.lease = None
            return False
        if doc is None or doc.get("owner") != self.owner:
            self.lease = None
            return False
        self.lease = Lease(self.name, self.owner, int(doc.get("token", 0)), doc["expires_at"])
        logger.debug("Lock %s taken by %s (token %d)", self.name, self.owner, self.lease.token)
        return True

    def renew(self) -> bool:
        """Extend the lease; False when the lock is no longer ours (it expired
        and someone else took it): the holder must stop what it guards."""
        now = datetime.now(tz=UTC)
        expires = now + self.ttl
        result = self.collection.update_one(
            {"_id": self.name, "owner": self.owner},
            {"$set": {"expires_at": expires, "renewed_at": now}},
        )
        if result.matched_count != 1:
            logger.warning("Lock %s is no longer held by %s", self.name, self.owner)
            self.lease = None
            return False
        if self.lease is not None:
            self.lease.expires_at = expires
        return True

    def release(self) -> bool:
        """Give the lock up (only if still ours). The document stays, with no
        owner, so the token keeps counting."""
        now = datetime.now(tz=UTC)
        result = self.collection.update_one(
            {"_id": self.name, "owner": self.owner},
            {"$set": {"owner": None, "expires_at": now, "released_at": now}},
        )
        self.lease = None
        return result.matched_count == 1

    def holder(self) -> dict[str, Any] | None:
        """The lock document as it is now (None: never taken)."""
        return self.collection.find_one({"_id": self.name})


class CrawlLock:
    """Extension: the crawl holds its site's lock (``crawl:<site>``) from start
    to end, so crawls started by cron or scrapyd, on any machine, never
    overlap either. A crawl that finds the lock held closes at once with
    finish reason ``locked``; one that loses it (its lease expired and another
    crawl took it) closes with ``lock_lost``.

    ``newscrawl schedule`` holds the lock itself and turns this off for its
    crawls.

    Settings: ``NEWSCRAWL_CRAWL_LOCK`` (False: no lock), ``NEWSCRAWL_CRAWL_LOCK_TTL``
    (``"60s"``: the lease, renewed every third of it), the store's
    (``MONGO_URI``, ``MONGO_DATABASE``, ...). Stats: ``newscrawl/lock/token``.
    """

    def __init__(self, crawler: Crawler, ttl: timedelta) -> None:
        self.crawler = crawler
        self.ttl = ttl
        self.store: Store | None = None
        self.lock: MongoLock | None = None
        self._renewing: LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlLock:
        from newscrawl.incremental.policy import parse_duration

        if not crawler.settings.getbool("NEWSCRAWL_CRAWL_LOCK", False):
            raise NotConfigured  # off by default: no "Disabled" warning in every crawl's log
        ttl = parse_duration(crawler.settings.get("NEWSCRAWL_CRAWL_LOCK_TTL", "60s"))
        ext = cls(crawler, ttl)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    async def spider_opened(self, spider: Spider) -> None:
        site = str(getattr(spider, "site", None) or spider.name)
        try:
            self.store = await open_crawl_store(self.crawler)
            self.lock = MongoLock(self.store.db, crawl_lock_name(site), ttl=self.ttl)
            taken = await run_in_thread(self.lock.acquire)
            holder = None if taken else await run_in_thread(self.lock.holder)
        except (StorageUnavailable, PyMongoError) as exc:
            logger.error("Cannot take the crawl lock, not crawling: %s", exc)
            raise CloseSpider(LOCK_UNAVAILABLE) from exc
        if not taken:
            logger.warning(
                "Another crawl of %s holds %s (%s, until %s): not crawling",
                site,
                self.lock.name,
                (holder or {}).get("owner"),
                (holder or {}).get("expires_at"),
            )
            self.lock = None
            raise CloseSpider(LOCKED)
        assert self.lock.lease is not None and self.crawler.stats is not None
        self.crawler.stats.set_value("newscrawl/lock/token", self.lock.lease.token)
        logger.info("Holding %s (token %d)", self.lock.name, self.lock.lease.token)
        self._renewing = LoopingCall(self._renew)
        self._renewing.start(self.ttl.total_seconds() / 3, now=False)

    def _renew(self) -> Deferred[None]:
        return deferred_from_coro(self._renew_async())

    async def _renew_async(self) -> None:
        if self.lock is None:
            return
        try:
            kept = await run_in_thread(self.lock.renew)
        except PyMongoError as exc:
            logger.warning("Could not renew %s: %s", self.lock.name, exc)
            return
        if not kept and self.crawler.engine is not None:
            logger.error("Lost %s to another crawl: closing this one", self.lock.name)
            self.lock = None
            await self.crawler.engine.close_spider_async(reason=LOCK_LOST)

    async def spider_closed(self, spider: Spider) -> None:
        if self._renewing is not None and self._renewing.running:
            self._renewing.stop()
        lock, self.lock = self.lock, None
        store, self.store = self.store, None
        try:
            if lock is not None:
                await run_in_thread(lock.release)
        except PyMongoError as exc:
            logger.warning("Could not release the crawl lock (it expires by itself): %s", exc)
        finally:
            if store is not None:
                await run_in_thread(store.close)
