"""DistributedScheduler: scrapy-redis' scheduler made safe for many workers.

What it adds to ``scrapy_redis.scheduler.Scheduler`` (see ``frontier.py`` for
the Redis side):

- **canonical fingerprints**: the dupefilter is
  :class:`~newscrawl.distributed.dupefilter.CanonicalRedisDupeFilter`, and the
  fingerprint check and the queue insert are one atomic step;
- **seeds once**: start requests are queued only by the crawl's first worker;
- **a reliable queue**: a popped request stays in this worker's processing
  hash until it is finished for good (engine done with it, its articles
  stored: :class:`~newscrawl.distributed.tracker.AckTracker`); the worker
  beats a heartbeat, and any worker re-queues the requests of a worker whose
  heartbeat expired (killed, lost);
- **idle close**: a worker closes ("finished") only when the queue is empty
  and no worker has a request in flight that could still add new ones, not
  merely when its own queue looks empty; the last one deletes the crawl's
  keys, so the next crawl starts afresh.

Redis is called synchronously from the reactor thread, as scrapy-redis does;
each call is one round trip (a Lua script).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any

import redis
from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.http import Request
from scrapy_redis.scheduler import Scheduler
from twisted.internet import task

from newscrawl.distributed import engine as engine_internals
from newscrawl.distributed.connection import connect, key_prefix
from newscrawl.distributed.frontier import Frontier, Snapshot
from newscrawl.distributed.tracker import AckTracker
from newscrawl.storage.signals import articles_stored

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

DEFAULT_WORKER_TIMEOUT = 20.0
DEFAULT_POLL_SECONDS = 0.1
#: request meta key: this worker's token for a popped request
TOKEN = "newscrawl_token"
#: finish reason when Redis stops answering mid-crawl
REDIS_UNAVAILABLE = "redis_unavailable"
STATS = "newscrawl/distributed"
#: fingerprints remembered locally (a repeat skips the Redis round trip); then forgotten
SEEN_CACHE_SIZE = 200_000


def new_worker_id() -> str:
    """Host, pid and a random tail: unique, and readable in Redis."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def token_of(source: Any) -> str | None:
    """The token of the request behind a response, or behind a failure handed
    to an errback (both carry ``.request``)."""
    request = getattr(source, "request", None)
    if not isinstance(request, Request):
        return None
    token = request.meta.get(TOKEN)
    return str(token) if token is not None else None


class DistributedScheduler(Scheduler):  # type: ignore[misc]
    """The frontier in Redis, shared by every worker of a crawl.

    Settings:

    - ``REDIS_URL`` (else env ``REDIS_URL``), ``REDIS_PARAMS``: the Redis;
    - ``NEWSCRAWL_DISTRIBUTED_PREFIX`` (``newscrawl:%(spider)s``): key prefix
      of the crawl (workers with the same prefix crawl together);
    - ``NEWSCRAWL_DISTRIBUTED_WORKER_TIMEOUT`` (20 s): a worker silent this long
      is dead and its in-flight requests are re-queued (it beats every fifth);
    - ``NEWSCRAWL_DISTRIBUTED_POLL_SECONDS`` (0.1): how often in-flight
      requests are checked and an idle worker looks for new work;
    - ``SCHEDULER_IDLE_BEFORE_CLOSE`` (0 s): how long the whole crawl must
      stay idle before a worker closes;
    - ``SCHEDULER_SERIALIZER`` (scrapy-redis' pickle), ``DUPEFILTER_DEBUG``.

    Stats: ``newscrawl/distributed/{worker,pushed,filtered,seeds_skipped,
    popped,finished,recovered,dead_workers,presumed_dead,cleaned}`` and
    scrapy-redis' ``scheduler/enqueued/redis``, ``scheduler/dequeued/redis``.
    """

    def __init__(self, server: redis.Redis, crawler: Crawler, **kwargs: Any) -> None:
        settings = crawler.settings
        super().__init__(
            server,
            persist=True,  # never flush a frontier other workers share
            flush_on_start=False,
            queue_cls="scrapy_redis.queue.PriorityQueue",
            dupefilter_cls="newscrawl.distributed.dupefilter.CanonicalRedisDupeFilter",
            **kwargs,
        )
        self.crawler = crawler
        assert crawler.stats is not None
        self.stats: StatsCollector = crawler.stats
        self.worker_timeout = settings.getfloat(
            "NEWSCRAWL_DISTRIBUTED_WORKER_TIMEOUT", DEFAULT_WORKER_TIMEOUT
        )
        self.heartbeat_seconds = max(0.05, self.worker_timeout / 5)
        self.poll_seconds = settings.getfloat(
            "NEWSCRAWL_DISTRIBUTED_POLL_SECONDS", DEFAULT_POLL_SECONDS
        )
        self.idle_seconds = settings.getfloat("SCHEDULER_IDLE_BEFORE_CLOSE", 0.0)
        self.worker = new_worker_id()
        self.tracker = AckTracker()
        self.frontier: Frontier | None = None
        self._counter = 0
        self._synced_busy = 0  # this worker's in-flight count as last written to Redis
        self._seen: set[str] = set()  # fingerprints known to be in the shared set
        self._starving = True
        self._idle = False
        self._idle_since: float | None = None
        self._last_beat = 0.0
        self._last_snapshot = 0.0
        self._loop: task.LoopingCall | None = None
        self._closing = False
        self._lost = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DistributedScheduler:
        settings = crawler.settings
        server = connect(settings)  # RedisUnavailable: the crawl fails at start
        serializer = settings.get("SCHEDULER_SERIALIZER")
        kwargs: dict[str, Any] = {}
        if isinstance(serializer, str):
            import importlib

            kwargs["serializer"] = importlib.import_module(serializer)
        elif serializer is not None:
            kwargs["serializer"] = serializer
        assert crawler.spidercls is not None
        prefix = key_prefix(settings, crawler.spidercls.name)
        scheduler = cls(
            server,
            crawler,
            queue_key=f"{prefix}:requests",
            dupefilter_key=f"{prefix}:dupefilter",
            **kwargs,
        )
        scheduler.stats = crawler.stats
        crawler.signals.connect(scheduler._item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(scheduler._request_scheduled, signal=signals.request_scheduled)
        crawler.signals.connect(scheduler._articles_stored, signal=articles_stored)
        return scheduler

    # -- Scrapy scheduler interface -----------------------------------------

    def open(self, spider: Spider) -> None:
        engine_internals.check(self.crawler)
        super().open(spider)  # the queue and the dupefilter
        self.frontier = Frontier(
            self.server,
            key_prefix(self.crawler.settings, spider.name),
            queue_key=self.queue.key,
            dupefilter_key=self.df.key,
        )
        self._beat(time.monotonic())
        self.stats.set_value(f"{STATS}/worker", self.worker)
        logger.info(
            "Distributed worker %s joined crawl %s (%d requests queued)",
            self.worker,
            self.frontier.prefix,
            self.frontier.queued(),
        )
        self._loop = task.LoopingCall(self._tick)
        self._loop.start(self.poll_seconds, now=False).addErrback(
            lambda failure: logger.error("Distributed scheduler loop failed: %s", failure.value)
        )

    def close(self, reason: str) -> None:
        """Every popped request is done (the engine drained them and the
        pipelines wrote every batch): finish them, leave (a request whose retry
        was still parked goes back to the queue), and clean up the crawl's
        keys if this was its last worker and it finished."""
        self._closing = True
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self.frontier is None:
            return
        try:
            tokens = self.tracker.take_all()
            self.frontier.finish(self.worker, 0, tokens)
            self._count("finished", len(tokens))
            departure = self.frontier.leave(self.worker, finished=reason == "finished")
        except redis.RedisError as exc:
            logger.error(
                "Could not leave the distributed crawl cleanly (Redis: %s); its in-flight "
                "requests go back to the queue when its heartbeat expires",
                exc,
            )
            return
        self._record_recovery(departure.dead, departure.recovered)
        if departure.cleaned:
            self.stats.set_value(f"{STATS}/cleaned", True)
            logger.info("Last worker of the finished crawl: deleted %s:*", self.frontier.prefix)
        else:
            logger.info("Worker %s left the distributed crawl (%s)", self.worker, reason)

    def enqueue_request(self, request: Request) -> bool:
        assert self.frontier is not None
        token = request.meta.get(TOKEN)
        token = str(token) if token is not None else None
        seeder = self.worker if request.meta.get("is_start_request") and token is None else None
        fingerprint = None if request.dont_filter else self.df.request_fingerprint(request)
        if fingerprint is not None and fingerprint in self._seen:
            self.tracker.derived_queued(token, id(request))
            return self._filtered(request)
        try:
            result = self.frontier.push(
                self._encode(request), -request.priority, fingerprint, seeder
            )
        except redis.RedisError as exc:
            self._redis_lost(exc)
            return False
        self.tracker.derived_queued(token, id(request))
        if result < 0:
            self._count("seeds_skipped")
            logger.debug("Start request left to the crawl's first worker: %s", request)
            return False
        if fingerprint is not None:
            if len(self._seen) >= SEEN_CACHE_SIZE:
                self._seen.clear()  # bounded memory; Redis still knows them all
            self._seen.add(fingerprint)
        if result == 0:
            return self._filtered(request)
        self._count("pushed")
        self.stats.inc_value("scheduler/enqueued/redis")
        self._idle, self._idle_since = False, None
        return True

    def next_request(self) -> Request | None:
        if self._closing or self._lost or self.frontier is None:
            return None
        self._counter += 1
        token = str(self._counter)
        try:
            data = self.frontier.pop(self.worker, token)
        except redis.RedisError as exc:
            self._redis_lost(exc)
            return None
        if data is None:
            self._starving = True
            return None
        self._starving = False
        try:
            request: Request = self.queue._decode_request(data)
        except Exception:
            logger.exception("Dropped an unreadable request from the shared queue")
            self._synced_busy = self.tracker.busy()
            self.frontier.finish(self.worker, self._synced_busy, [token])
            return None
        request.meta[TOKEN] = token
        self.tracker.popped(token, request)
        self._synced_busy += 1  # the pop counted it in Redis
        self._count("popped")
        self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def has_pending_requests(self) -> bool:
        """True while the crawl may still have work for this worker: requests
        queued in Redis, or in flight anywhere (they may add more)."""
        if self._closing:
            return False
        if self._lost or not self._idle:  # lost: closing with its own reason
            return True
        self._refresh(time.monotonic())
        return not self._idle

    def __len__(self) -> int:
        return self.frontier.queued() if self.frontier is not None else 0

    # -- the loop -------------------------------------------------------------

    def _tick(self) -> None:
        if self._closing or self._lost or self.frontier is None:
            return
        now = time.monotonic()
        try:
            self._finish_done()
            if now - self._last_beat >= self.heartbeat_seconds:
                self._beat(now)
            if self._starving or now - self._last_snapshot >= self.heartbeat_seconds:
                snapshot = self._refresh(now)
                if self._idle or (self._starving and snapshot.queued):
                    engine_internals.wake(self.crawler)
        except redis.RedisError as exc:
            self._redis_lost(exc)

    def _finish_done(self) -> None:
        """Tell Redis which popped requests the engine is done with, and which
        are finished for good (they leave the processing hash)."""
        assert self.frontier is not None
        requests = engine_internals.in_progress(self.crawler)
        if requests is None:
            return
        for token, request in self.tracker.active().items():
            if request not in requests:
                self.tracker.engine_done(token)
        finished = self.tracker.take_finished()
        busy = self.tracker.busy()
        if finished or busy != self._synced_busy:
            self.frontier.finish(self.worker, busy, finished)
            self._synced_busy = busy
        if finished:
            self._count("finished", len(finished))

    def _beat(self, now: float) -> None:
        assert self.frontier is not None
        first = self._last_beat == 0.0
        added = self.frontier.heartbeat(self.worker, self.worker_timeout, self._synced_busy)
        self._last_beat = now
        if added and not first:
            self._count("presumed_dead")
            logger.warning(
                "Worker %s missed its heartbeat for %gs: others re-queued its in-flight "
                "requests (some pages may be fetched twice)",
                self.worker,
                self.worker_timeout,
            )

    def _refresh(self, now: float) -> Snapshot:
        """Look at the whole crawl (re-queueing dead workers' requests)."""
        assert self.frontier is not None
        snapshot = self.frontier.snapshot()
        self._last_snapshot = now
        self._record_recovery(snapshot.dead, snapshot.recovered)
        if snapshot.idle:
            self._idle_since = self._idle_since if self._idle_since is not None else now
        else:
            self._idle_since = None
        self._idle = self._idle_since is not None and now - self._idle_since >= self.idle_seconds
        return snapshot

    def _record_recovery(self, dead: int, recovered: int) -> None:
        if not dead:
            return
        self._count("dead_workers", dead)
        self._count("recovered", recovered)
        logger.warning(
            "%d worker(s) stopped beating: re-queued their %d in-flight request(s)",
            dead,
            recovered,
        )

    # -- signals ----------------------------------------------------------------

    def _request_scheduled(self, request: Request) -> None:
        """A retry or redirect of a popped request (it carries a copy of the
        token): the popped one waits until this one is queued (a retry may be
        parked in memory for its backoff first)."""
        token = request.meta.get(TOKEN)
        if token is not None:
            self.tracker.derived(str(token), id(request))

    def _item_scraped(self, item: Any, response: Any) -> None:
        key = ItemAdapter(item).get("key")
        self.tracker.item_buffered(token_of(response), str(key) if key else None)

    def _articles_stored(self, outcomes: dict[str, str], failed: dict[str, str]) -> None:
        self.tracker.stored([*outcomes, *failed])

    # -- helpers ----------------------------------------------------------------

    def _encode(self, request: Request) -> bytes:
        """The request as queued: without this worker's token (a redirect or
        retry of a popped request carries a copy of its meta)."""
        obj = request.to_dict(spider=self.spider)
        meta = obj.get("meta")
        if meta and TOKEN in meta:
            obj["meta"] = {name: value for name, value in meta.items() if name != TOKEN}
        data: bytes = self.queue.serializer.dumps(obj)
        return data

    def _filtered(self, request: Request) -> bool:
        self.df.log(request, self.spider)
        self._count("filtered")
        return False

    def _count(self, name: str, value: int = 1) -> None:
        self.stats.inc_value(f"{STATS}/{name}", value)

    def _redis_lost(self, exc: Exception) -> None:
        """Redis stopped answering: close the crawl (once). What this worker
        had in flight stays in Redis and is re-queued when its heartbeat has
        expired (the next run)."""
        if self._lost:
            return
        self._lost = True
        logger.error("Lost Redis, closing the crawl: %s", exc)
        self.stats.set_value(f"{STATS}/error", str(exc))
        if self.crawler.engine is not None:
            from scrapy.utils.defer import deferred_from_coro

            deferred_from_coro(
                self.crawler.engine.close_spider_async(reason=REDIS_UNAVAILABLE)
            ).addErrback(lambda failure: logger.error("Could not close: %s", failure.value))
