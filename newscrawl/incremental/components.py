"""The incremental crawl's Scrapy components: one extension that owns the
state, a downloader middleware for conditional requests and a spider
middleware that decides which links to follow.

Enable all three (``newscrawl/settings.py`` does)::

    EXTENSIONS = {"newscrawl.incremental.Incremental": 100}
    DOWNLOADER_MIDDLEWARES = {"newscrawl.incremental.ConditionalRequests": 590}
    SPIDER_MIDDLEWARES = {"newscrawl.incremental.SkipKnownPages": 960}
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

from itemadapter import ItemAdapter, is_item
from pymongo import UpdateOne
from pymongo.database import Database
from pymongo.errors import PyMongoError
from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response
from scrapy.statscollectors import StatsCollector
from scrapy.utils.asyncio import CallLaterResult, call_later, run_in_thread
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.defer import Deferred

from newscrawl.incremental.policy import (
    RECHECK,
    SKIP,
    Known,
    conditional_headers,
    parse_duration,
    parse_now,
    validators_from_headers,
)
from newscrawl.incremental.state import (
    ARTICLES,
    LIST_KINDS,
    PAGE_STATE,
    STORED,
    Config,
    CrawlState,
    NewPage,
    StateOp,
    StateWriter,
    ensure_page_state,
    linked_values,
    load_state,
    page_values,
    post_urls,
)
from newscrawl.runs import urls_to_retry
from newscrawl.sites import finews
from newscrawl.storage.client import Store, open_crawl_store
from newscrawl.storage.errors import StorageUnavailable
from newscrawl.storage.signals import articles_stored

logger = logging.getLogger(__name__)

STATS = "newscrawl/incremental"
NOT_MODIFIED = "newscrawl/http/not_modified"
#: request meta: this post is stored and fetched again to look for an update
META_RECHECK = "newscrawl_recheck"
#: request meta: fetch in full (no conditional headers)
META_FULL = "newscrawl_full"
#: start request priorities: failed pages first, then lists, then re-checks
RETRY_PRIORITY = 30
LIST_PRIORITY = 0
RECHECK_PRIORITY = 5
#: page_state writes per batch, and the longest one waits
WRITE_BATCH = 200
WRITE_SECONDS = 2.0

_instances: WeakKeyDictionary[Crawler, Incremental] = WeakKeyDictionary()


class NotModified(IgnoreRequest):
    """The server answered 304: the page is as stored. Ends the request (its
    errback sees this; it is not a failure)."""


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


class Incremental:
    """Makes repeated crawls fetch only what is new (see :mod:`newscrawl.incremental`).

    Settings:

    - ``NEWSCRAWL_INCREMENTAL_ENABLED`` (True): False crawls everything again
      (the three components raise NotConfigured). Also off when
      ``MONGO_ENABLED`` is False: without a store nothing is ever "stored".
    - ``NEWSCRAWL_RECHECK_WINDOW`` ("24h"): stored articles published within
      this of the reference time are fetched again to look for updates.
    - ``NEWSCRAWL_RECHECK_AFTER`` ("1h"): ... at most once per this.
    - ``NEWSCRAWL_LIST_RECHECK_AFTER`` ("1h"): a category page no new post
      links to is fetched again (conditionally) when checked longer ago.
    - ``NEWSCRAWL_STATE_HORIZON`` ("7d"): how far back the state is loaded.
    - ``NEWSCRAWL_NOW`` (unset: the current time): the reference time the
      window is measured from (a replica's build time in tests).
    - ``MONGO_*``: the database (:func:`newscrawl.storage.client.open_store`).

    Stats: ``newscrawl/incremental/{known,skipped,rechecked,lists_skipped,
    conditional,gone,retried,state_writes,state_write_errors}``,
    ``newscrawl/http/not_modified``.
    """

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        assert crawler.stats is not None
        self.stats: StatsCollector = crawler.stats
        self.config = Config(
            window=parse_duration(settings.get("NEWSCRAWL_RECHECK_WINDOW", "24h")),
            recheck_after=parse_duration(settings.get("NEWSCRAWL_RECHECK_AFTER", "1h")),
            list_recheck_after=parse_duration(settings.get("NEWSCRAWL_LIST_RECHECK_AFTER", "1h")),
            horizon=parse_duration(settings.get("NEWSCRAWL_STATE_HORIZON", "7d")),
        )
        self.reference_now = parse_now(settings.get("NEWSCRAWL_NOW"))
        #: None until loaded, and when the store cannot be used (then: a full crawl)
        self.state: CrawlState | None = None
        self.store: Store | None = None
        self.writer: StateWriter | None = None
        self.loaded: Deferred[None] = Deferred()
        self._ops: list[StateOp] = []
        self._queue: deque[list[StateOp]] = deque()
        self._draining: Deferred[None] | None = None
        self._timer: CallLaterResult | None = None
        self._retry: list[str] = []
        self._linked: set[str] = set()
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self.articles_stored, signal=articles_stored)
        crawler.signals.connect(self.item_dropped, signal=signals.item_dropped)

    @classmethod
    def of(cls, crawler: Crawler) -> Incremental:
        """The crawl's one instance (the extension and both middlewares share it)."""
        instance = _instances.get(crawler)
        if instance is None:
            settings = crawler.settings
            if not settings.getbool("NEWSCRAWL_INCREMENTAL_ENABLED", True):
                raise NotConfigured("NEWSCRAWL_INCREMENTAL_ENABLED is False: a full crawl")
            if not settings.getbool("MONGO_ENABLED", True):
                raise NotConfigured("MONGO_ENABLED is False: nothing is stored to skip")
            instance = cls(crawler)
            _instances[crawler] = instance
        return instance

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Incremental:
        return cls.of(crawler)

    # -- start and end -----------------------------------------------------

    async def spider_opened(self, spider: Spider) -> None:
        """Load the state (off the reactor thread) before any request is sent."""
        try:
            await self._load(str(getattr(spider, "site", None) or spider.name))
        finally:
            self.loaded.callback(None)

    async def _load(self, site: str) -> None:
        if self.stats.get_value("newscrawl/store/error") is not None:
            logger.warning("Incremental state not loaded: the article store is unavailable")
            return
        wall_now = _now()
        try:
            self.store = await open_crawl_store(self.crawler)
            db = self.store.db
            await run_in_thread(ensure_page_state, db)
            self.state = await run_in_thread(
                load_state,
                db,
                self.config,
                reference_now=self.reference_now or wall_now,
                wall_now=wall_now,
            )
        except (StorageUnavailable, PyMongoError) as exc:
            logger.error("Cannot read the incremental state, crawling everything: %s", exc)
            self.state = None
            return
        try:
            self._retry = await run_in_thread(_retry_targets, db, site)
        except PyMongoError as exc:
            logger.warning("Cannot read the last run's failed URLs: %s", exc)
        if self._retry:
            logger.info("%d URLs that failed last run are fetched first", len(self._retry))
        self.writer = StateWriter(db)
        self.stats.set_value(f"{STATS}/known", len(self.state.known))

    def retry_urls(self) -> list[str]:
        """The pages the last run of this spider failed for good (fetched first)."""
        return list(self._retry)

    async def wait_loaded(self) -> None:
        if not self.loaded.called:
            await maybe_deferred_to_future(self.loaded)

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        """Write what is buffered and release the store."""
        self._flush()
        if self._draining is not None:
            await maybe_deferred_to_future(self._draining)
        if self.state is not None and self.state.children:
            logger.info(
                "%d list pages keep their old validators: posts they link to are not stored yet",
                len(self.state.children),
            )
        store, self.store = self.store, None
        if store is not None:
            await run_in_thread(store.close)

    # -- what the store says -----------------------------------------------

    def item_yielded(self, item: Any) -> None:
        """An article left the spider: remember its post URLs until it is stored."""
        if self.state is None:
            return
        adapter = ItemAdapter(item)
        key = adapter.get("key")
        if not key:
            return
        urls = post_urls([adapter.get("url"), *(adapter.get("urls") or [])])
        self.state.add_item(str(key), urls, adapter.get("published_at"))

    def articles_stored(self, outcomes: dict[str, str], failed: dict[str, str]) -> None:
        """Posts count as seen only now that their article is stored."""
        if self.state is None:
            return
        now = _now()
        for key in outcomes:
            for url, published in self.state.take_item(key).items():
                self._settle_post(url, key, published, now, STORED)
        for key in failed:
            urls = self.state.take_item(key)
            logger.debug("Article %s not stored: its pages stay unseen %s", key, sorted(urls))

    def item_dropped(self, item: Any, response: Response, exception: BaseException) -> None:
        """A dropped article is a final answer for its pages (not fetched again
        until their re-check is due)."""
        if self.state is None:
            return
        adapter = ItemAdapter(item)
        key = str(adapter.get("key") or "")
        urls = post_urls([adapter.get("url"), *(adapter.get("urls") or [])])
        outcome = f"dropped:{type(exception).__name__}"
        now = _now()
        for url, published in self.state.take_item(key, urls).items():
            self._settle_post(url, key or None, published, now, outcome)

    def _settle_post(
        self, url: str, key: str | None, published: datetime | None, now: datetime, outcome: str
    ) -> None:
        assert self.state is not None
        was = self.state.known.get(url)
        fields: dict[str, Any] = {"outcome": outcome, "article_id": key}
        if published is not None:
            fields["published_at"] = published
        self._queue_page(
            url,
            page_values(
                finews.POST,
                now,
                validators=self.state.fetched.pop(url, None),
                status=200,
                **fields,
            ),
        )
        if was is not None and was.gone and key:
            # the page answers again: the article is back on the site
            self._queue_op(ARTICLES, UpdateOne({"_id": key}, {"$unset": {"gone_at": ""}}))
        ready = self.state.settle(url, Known(key, published, now))
        self._commit_lists(ready, now)

    # -- what the middlewares report ----------------------------------------

    def list_followed(self, url: str) -> None:
        """A link to the category page ``url`` is followed (recorded once a run)."""
        if self.state is not None and url not in self._linked:
            self._linked.add(url)
            self.state.list_checked.setdefault(url, None)
            self._queue_page(url, linked_values(finews.CATEGORY, _now()))

    def list_parsed(self, url: str, new_posts: Iterable[str]) -> None:
        if self.state is not None and self.state.list_parsed(url, new_posts):
            self._commit_lists([url], _now())

    def _commit_lists(self, urls: Iterable[str], now: datetime) -> None:
        assert self.state is not None
        for url in urls:
            validators = self.state.fetched.pop(url, None)
            self.state.list_checked[url] = now
            self._queue_page(
                url, page_values(finews.route(url), now, validators=validators, status=200)
            )

    def not_modified(self, url: str, kind: str) -> None:
        """A 304: the page is as stored; a stored post was seen again."""
        assert self.state is not None
        now = _now()
        self.stats.inc_value(NOT_MODIFIED)
        self._queue_page(url, page_values(kind, now, status=304))
        if kind in LIST_KINDS:
            self.state.list_checked[url] = now
            return
        known = self.state.known.get(url)
        if known is not None:
            if known.article_id:
                self._queue_op(
                    ARTICLES,
                    UpdateOne({"_id": known.article_id}, {"$max": {"last_seen_at": now}}),
                )
            self._commit_lists(self.state.settle(url, Known(None, None, now)), now)

    def gone(self, url: str) -> None:
        """A stored post answers 404: mark its article ``gone_at`` (never delete).
        A post never stored that answers 404 no longer holds back its list pages."""
        assert self.state is not None
        known = self.state.known.get(url)
        now = _now()
        if known is None:
            self._commit_lists(self.state.release(url), now)
            return
        self.stats.inc_value(f"{STATS}/gone")
        logger.info("Stored article %s is gone from the site: %s", known.article_id, url)
        self._queue_page(url, page_values(finews.POST, now, status=404, gone_at=now))
        if known.article_id:
            self._queue_op(
                ARTICLES,
                UpdateOne(
                    {"_id": known.article_id, "gone_at": {"$exists": False}},
                    {"$set": {"gone_at": now}},
                ),
            )
        ready = self.state.settle(url, Known(known.article_id, known.published_at, now, gone=True))
        self._commit_lists(ready, now)

    # -- writing, in batches, off the reactor thread -------------------------

    def _queue_page(self, url: str, values: dict[str, Any]) -> None:
        """Set ``values`` on the ``page_state`` of ``url``: an insert when the
        page has none yet as far as this crawl knows (:class:`NewPage`)."""
        if self.writer is None or self.state is None:
            return
        pages = self.state.pages
        if url in pages:
            self._queue_op(PAGE_STATE, UpdateOne({"_id": url}, {"$set": values}, upsert=True))
        else:
            pages.add(url)
            self._queue_op(PAGE_STATE, NewPage.of(url, values))

    def _queue_op(self, collection: str, op: UpdateOne | NewPage) -> None:
        if self.writer is None:
            return
        self._ops.append((collection, op))
        if len(self._ops) >= WRITE_BATCH:
            self._flush()
        elif self._timer is None:
            self._timer = call_later(WRITE_SECONDS, self._flush_by_age)

    def _flush_by_age(self) -> None:
        self._timer = None
        self._flush()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._ops:
            self._queue.append(self._ops)
            self._ops = []
        if self._queue and self._draining is None:
            self._draining = deferred_from_coro(self._drain())

    async def _drain(self) -> None:
        try:
            while self._queue:
                ops = self._queue.popleft()
                assert self.writer is not None
                try:
                    result = await run_in_thread(self.writer.write, ops)
                except PyMongoError as exc:
                    self.stats.inc_value(f"{STATS}/state_write_errors", len(ops))
                    logger.warning(
                        "Could not write %d incremental state updates (those pages will be"
                        " fetched again next run): %s",
                        len(ops),
                        exc,
                    )
                    continue
                self.stats.inc_value(f"{STATS}/state_writes", result.written)
                if result.errors:
                    self.stats.inc_value(f"{STATS}/state_write_errors", len(result.errors))
                    logger.warning("Incremental state updates failed: %s", result.errors)
        finally:
            self._draining = None


def _retry_targets(db: Database[dict[str, Any]], site: str) -> list[str]:
    """The pages to fetch first: last run's failed URLs worth a retry, a
    failed share JSON replaced by the post page that asks for it (blocking)."""
    targets: dict[str, None] = {}
    for url in urls_to_retry(db, site):
        if finews.route(url) != finews.SHARE_JSON:
            targets[url] = None
            continue
        code = finews.info_code_of(url)
        doc = db[ARTICLES].find_one({"info_code": code}, {"url": 1}) if code else None
        if doc is not None and doc.get("url"):
            targets[str(doc["url"])] = None
    return list(targets)


class ConditionalRequests:
    """Downloader middleware: sends ``If-None-Match``/``If-Modified-Since`` for
    list pages and re-checked posts, turns a 304 into "unchanged" (the request
    ends there, counted in ``newscrawl/http/not_modified``), marks a stored
    post that answers 404 as gone, and keeps the validators of what it
    fetched. Settings: those of :class:`Incremental`."""

    def __init__(self, incremental: Incremental) -> None:
        self.incremental = incremental

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ConditionalRequests:
        try:
            return cls(Incremental.of(crawler))
        except NotConfigured:
            raise NotConfigured from None  # said once, by the extension

    def process_request(self, request: Request) -> None:
        state = self.incremental.state
        if state is None or request.meta.get(META_FULL):
            return
        kind = finews.route(request.url)
        if kind not in LIST_KINDS and not (kind == finews.POST and request.meta.get(META_RECHECK)):
            return
        canon = finews.canonical_url(request.url)
        headers = conditional_headers(state.validators.get(canon), request.url)
        if headers:
            for name, value in headers.items():
                request.headers[name] = value
            self.incremental.stats.inc_value(f"{STATS}/conditional")

    def process_response(self, request: Request, response: Response) -> Response:
        state = self.incremental.state
        if state is None:
            return response
        kind = finews.route(request.url)
        if kind not in LIST_KINDS and kind != finews.POST:
            return response
        canon = finews.canonical_url(request.url)
        if response.status == 304 and (
            b"If-None-Match" in request.headers or b"If-Modified-Since" in request.headers
        ):
            self.incremental.not_modified(canon, kind)
            raise NotModified(f"not modified: {request.url}")
        if response.status == 404 and kind == finews.POST:
            self.incremental.gone(canon)
        elif 200 <= response.status < 300:
            validators = validators_from_headers(
                response.url,
                {name: _header(response, name) for name in ("ETag", "Last-Modified")},
            )
            if validators:
                state.fetched[canon] = validators
        return response


class SkipKnownPages:
    """Spider middleware: drops links to posts already stored (counting
    ``newscrawl/incremental/skipped``), marks the ones due for a re-check,
    follows a category link only from a new post or when the category is due,
    tells :class:`Incremental` which new posts each list page led to, and
    adds to the start: last run's failed pages, stale category pages and
    re-checks. Settings: those of :class:`Incremental`."""

    def __init__(self, incremental: Incremental) -> None:
        self.incremental = incremental
        self.crawler = incremental.crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SkipKnownPages:
        try:
            return cls(Incremental.of(crawler))
        except NotConfigured:
            raise NotConfigured from None  # said once, by the extension

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        await self.incremental.wait_loaded()
        spider = self.crawler.spider
        state = self.incremental.state
        full_site = getattr(spider, "start_url", finews.HOME_URL) == finews.HOME_URL
        if state is None or spider is None or not full_site:
            async for request in start:
                yield request
            return
        parse = spider.parse
        errback = getattr(spider, "request_failed", None)
        for url in self.incremental.retry_urls():
            self.incremental.stats.inc_value(f"{STATS}/retried")
            yield Request(
                url, parse, errback=errback, priority=RETRY_PRIORITY, meta={META_FULL: True}
            )
        async for request in start:
            yield request
        # asked for at the very URL the validators came from (a category's
        # folder form is another file, with another ETag)
        for url in state.stale_lists():
            self.incremental.list_followed(url)
            yield Request(state.fetch_url(url), parse, errback=errback, priority=LIST_PRIORITY)
        for url in state.recheck_candidates():
            self.incremental.stats.inc_value(f"{STATS}/rechecked")
            yield Request(
                state.fetch_url(url),
                parse,
                errback=errback,
                priority=RECHECK_PRIORITY,
                meta={META_RECHECK: True},
            )

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        state = self.incremental.state
        if state is None:
            async for out in result:
                yield out
            return
        kind = finews.route(response.url)
        from_new_post = kind == finews.POST and not response.meta.get(META_RECHECK)
        new_posts: list[str] = []
        async for out in result:
            if isinstance(out, Request):
                target = finews.route(out.url)
                if target == finews.POST:
                    canon = finews.canonical_url(out.url)
                    decision = state.decide(canon)
                    if decision == SKIP:
                        self.incremental.stats.inc_value(f"{STATS}/skipped")
                        continue
                    if decision == RECHECK:
                        out.meta[META_RECHECK] = True
                    new_posts.append(canon)
                elif target == finews.CATEGORY:
                    canon = finews.canonical_url(out.url)
                    if not state.list_wanted(canon, from_new_post=from_new_post):
                        self.incremental.stats.inc_value(f"{STATS}/lists_skipped")
                        continue
                    self.incremental.list_followed(canon)
            elif is_item(out):
                self.incremental.item_yielded(out)
            yield out
        if kind in LIST_KINDS:
            self.incremental.list_parsed(finews.canonical_url(response.url), new_posts)
