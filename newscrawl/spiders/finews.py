"""FinewsSpider: where to go on the finews site. What a page means is in
``newscrawl.extract``; what to keep is in the pipelines."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy import Request, Spider
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure

from newscrawl import runs
from newscrawl.extract import read
from newscrawl.extract.pool import ParsePool
from newscrawl.extract.post import PostFields
from newscrawl.extract.share import ShareFields, merge_share
from newscrawl.incremental import NotModified
from newscrawl.items import Article
from newscrawl.sites import finews

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from newscrawl.distributed.shares import SharedShares

logger = logging.getLogger(__name__)

#: page kinds the spider follows (share pages are reached through their JSON)
FOLLOW = frozenset({finews.HOME, finews.CATEGORY, finews.POST})
#: links the spider requests once a crawl: a second Request would be dropped by
#: the dupefilter, after costing its making and the way through the middlewares
#: and the scheduler. Category links are not among them: the incremental
#: middleware may drop one from one page and follow it from another.
ONCE = frozenset({finews.HOME, finews.POST})
#: request meta: how many pages in a row without an article led here (trap rule)
CHAIN = "newscrawl_chain"
#: request priorities: finish articles before opening more lists
PRIORITY = {
    finews.SHARE_JSON: 20,
    finews.POST: 10,
    finews.CATEGORY: 0,
    finews.HOME: 0,
    finews.FEED: 0,
}
#: how each kind of site page is read (:func:`newscrawl.extract.read.read_page`)
READ_AS = {finews.POST: read.POST, finews.FEED: read.FEED}
#: the Atom feed of the newest posts: with the home page, where new posts show up first
FEED_URL = f"https://{finews.MAIN_HOST}{finews.FEED_PATH}"
#: ``spider.state`` key (saved in JOBDIR): post URLs parsed while their share JSON was in flight
STATE_WAITING = "share_waiting"


@dataclass
class _Waiting:
    """A parsed post waiting for its share JSON."""

    fields: PostFields
    urls: list[str]


class FinewsSpider(Spider):
    """Crawls finews from the home page (or ``-a start_url=...``): post links,
    category links found on posts, every post of a category page, and share
    links (their JSON endpoint, not the JavaScript page). Third-party links are
    recorded on the article (``origin_url``, ``outlinks``) and never followed.

    Starting from the home page it also reads ``/feed.xml`` (entry links).
    With ``JOBDIR``, posts whose share JSON was still awaited when the crawl
    stopped are kept in ``spider.state`` and fetched again on resume (their
    page is already in the dupefilter, their JSON request in the queue).

    Every request has an errback: a URL that fails for good (after its retries,
    refused by a rule, or a bad page) is reported to the run record with its
    reason (:mod:`newscrawl.runs`). Traps: a page reached through
    ``NEWSCRAWL_TRAP_CHAIN`` pages in a row without an article (endless
    pagination or calendars) has its links to anything but possible articles
    refused (``trap``); ``DEPTH_LIMIT`` bounds the rest (``depth_limit``).

    Settings: ``NEWSCRAWL_SHARE_CACHE_SIZE`` (share JSON answers kept for a post
    met again in another category), ``NEWSCRAWL_TRAP_CHAIN`` (4), ``DEPTH_LIMIT``.

    Stats (``newscrawl/...``): ``pages/<kind>``, ``links/offsite``,
    ``links/repeated`` (links to a home or post page requested before: no
    second Request is made, see :data:`ONCE`), ``refused/<reason>``,
    ``share/fetched``, ``share/invalid``, ``share/failed``, ``share/cache_hit``.
    """

    name = "finews"
    site = finews.SITE
    allowed_domains: ClassVar[list[str]] = list(finews.ALLOWED_HOSTS)

    def __init__(self, start_url: str | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_url = start_url or finews.HOME_URL
        # posts whose share JSON is in flight, by article id
        self._waiting: dict[str, list[_Waiting]] = {}
        # share JSON answers already fetched (None: failed), by article id
        self._shares: OrderedDict[str, ShareFields | None] = OrderedDict()
        # canonical URLs refused by the trap or depth rule (reported once)
        self._refused: set[str] = set()
        # canonical URLs of the home and post pages requested so far (ONCE)
        self._requested: set[str] = set()
        # distributed mode: _waiting and _shares live in Redis instead (see from_crawler)
        self.shared_shares: SharedShares | None = None
        # where pages are parsed (see from_crawler: NEWSCRAWL_PARSE_PROCESSES)
        self.reader = ParsePool(0)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> FinewsSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        from newscrawl.distributed.shares import SharedShares

        spider.shared_shares = SharedShares.from_crawler(crawler)  # None unless distributed
        spider.reader = ParsePool(crawler.settings.getint("NEWSCRAWL_PARSE_PROCESSES", 1))
        return spider

    @property
    def _share_cache_size(self) -> int:
        return self.settings.getint("NEWSCRAWL_SHARE_CACHE_SIZE", 10_000)

    async def start(self) -> AsyncIterator[Any]:
        self._requested.add(finews.canonical_url(self.start_url))
        yield Request(self.start_url, callback=self.parse, errback=self.request_failed)
        for url in self._resumed_posts():
            yield Request(
                url,
                callback=self.parse,
                errback=self.request_failed,
                priority=PRIORITY[finews.POST],
                dont_filter=True,
            )

    def _feed_after(self, request: Request | None) -> Iterator[Request]:
        """The feed, once the home page (the start) is handled, whatever its
        answer: its links then come after the home page's, so which form of a
        post's URL is fetched does not depend on which answered first (``urls``
        holds canonical forms only, whatever form was fetched)."""
        if (
            request is not None
            and self.start_url == finews.HOME_URL
            and finews.route(request.url) == finews.HOME
        ):
            yield Request(
                FEED_URL,
                callback=self.parse,
                errback=self.request_failed,
                priority=PRIORITY[finews.FEED],
            )

    def _resumed_posts(self) -> list[str]:
        """Posts a stopped run parsed but could not finish (share JSON in flight)."""
        waiting: dict[str, list[str]] = self._job_state().pop(STATE_WAITING, {})
        urls = list(dict.fromkeys(url for posts in waiting.values() for url in posts))
        if urls:
            logger.info(
                "Resuming: fetching again %d posts that waited for their share JSON", len(urls)
            )
            if self.crawler.stats is not None:
                self.crawler.stats.set_value("newscrawl/jobdir/resumed_posts", len(urls))
        return urls

    def _job_state(self) -> dict[str, Any]:
        """``spider.state``: Scrapy's SpiderState sets it and saves it in JOBDIR."""
        state = getattr(self, "state", None)
        if not isinstance(state, dict):
            state = {}
            self.state = state
        return state

    # --- pages -----------------------------------------------------------

    async def parse(self, response: Response, **kwargs: Any) -> AsyncIterator[Any]:
        """Any site page: follow its links; a post page also gives an article.
        The page is decoded and parsed in a parse process (``self.reader``)."""
        if not isinstance(response, TextResponse):
            self._count("pages/not_text")
            return
        kind = finews.route(response.url)
        self._count(f"pages/{kind}")
        page = await self.reader.page(
            response.body,
            response.encoding,
            response.url,
            READ_AS.get(kind, read.LIST),
            finews.canonical_url,
        )
        # made off this thread: routing, fingerprinting and the checks of the
        # page's links below look them up instead of making them again
        finews.remember_canonical(page.canonical)
        for out in self.handle_page(response, kind, page):
            yield out

    def handle_page(self, response: TextResponse, kind: str, page: read.PageRead) -> Iterator[Any]:
        """What a page, read, leads to: requests for its links, and for a post
        page its article (or the request for its share JSON)."""
        if kind == finews.FEED:
            yield from self._follow_feed(page.links)
            return
        fields = self._post_fields(response, page) if kind == finews.POST else None
        chain = 0 if fields is not None else int(_meta(response).get(CHAIN, 0)) + 1
        yield from self._follow(response, page.links, chain)
        yield from self._feed_after(response.request)
        if fields is not None:
            yield from self._parse_post(response, fields)

    def _follow(
        self, response: TextResponse, links: Iterable[str], chain: int
    ) -> Iterator[Request]:
        """Requests for the page's site links. ``chain``: pages in a row without
        an article, this one included; at the trap limit only links that may be
        articles are followed."""
        trap = chain >= self.settings.getint("NEWSCRAWL_TRAP_CHAIN", 4)
        depth_limit = self.settings.getint("DEPTH_LIMIT", 0)
        depth = int(_meta(response).get("depth", 0)) + 1
        for url in links:
            kind = finews.route(url)
            if kind in FOLLOW:
                if kind in ONCE and not self._first_request(url):
                    continue
                maybe_article = kind == finews.POST and finews.info_code_of(url) is not None
                if trap and not maybe_article:
                    detail = f"{chain} pages without an article before {response.url}"
                    self._refuse(url, runs.TRAP, detail)
                elif depth_limit and depth > depth_limit:
                    self._refuse(url, runs.DEPTH_LIMIT, f"depth {depth} > {depth_limit}")
                else:
                    if kind in ONCE:
                        self._requested.add(finews.canonical_url(url))
                    yield Request(
                        url,
                        callback=self.parse,
                        errback=self.request_failed,
                        priority=PRIORITY[kind],
                        meta={CHAIN: chain},
                    )
            elif kind == finews.OFFSITE:
                self._count("links/offsite")

    def _refuse(self, url: str, reason: str, detail: str) -> None:
        """Report a link a rule keeps the crawl from (once; never the home page)."""
        canonical = finews.canonical_url(url)
        if canonical in self._refused or canonical in (
            finews.canonical_url(self.start_url),
            finews.HOME_URL,
        ):
            return
        self._refused.add(canonical)
        self._count(f"refused/{reason}")
        logger.debug("Not following %s (%s): %s", url, reason, detail)
        runs.report_failure(self.crawler, url, reason, detail)

    def _report_bad_answer(self, response: Response, reason: str) -> None:
        """A page or share JSON that answered but can't be used: the run record
        keeps it (under the URL first asked for) so the next run tries again."""
        runs.report_failure(
            self.crawler,
            runs.first_url(response.request) if response.request else response.url,
            reason,
            f"status {response.status}, {len(response.body)} bytes",
        )

    def request_failed(self, failure: Failure) -> Iterator[Request]:
        """Errback of page requests: the URL failed for good, the run record says why."""
        yield from self._feed_after(getattr(failure, "request", None))
        if isinstance(failure.value, NotModified):
            return  # a 304 to a conditional request: the page is as stored
        runs.report_request_failure(self.crawler, failure)

    def _post_fields(self, response: TextResponse, page: read.PageRead) -> PostFields | None:
        """The post's fields; None for a bad page (reported) or a page that is no article."""
        if page.post is not None:
            return page.post
        bad = page.bad
        if bad is not None:
            self._count(f"pages/{bad}")
            logger.warning("Bad page (%s), skipped: %s", bad, response.url)
            self._report_bad_answer(response, f"{runs.BAD_PAGE}:{bad}")
        else:
            self._count("pages/not_article")
            logger.warning("Not an article page, skipped: %s", response.url)
        return None

    def _first_request(self, url: str) -> bool:
        """False for a home or post page already requested this crawl."""
        if finews.canonical_url(url) in self._requested:
            self._count("links/repeated")
            return False
        return True

    def _follow_feed(self, links: Iterable[str]) -> Iterator[Request]:
        for url in links:
            if finews.route(url) == finews.POST and self._first_request(url):
                self._requested.add(finews.canonical_url(url))
                yield Request(
                    url,
                    callback=self.parse,
                    errback=self.request_failed,
                    priority=PRIORITY[finews.POST],
                )

    def _parse_post(self, response: TextResponse, fields: PostFields) -> Iterator[Any]:
        urls = _seen_urls(response, fields)
        code = fields.info_code
        json_url = finews.share_json_url(fields.share_url) if fields.share_url else None
        if code is None or json_url is None:
            yield self._article(merge_share(fields, None), urls)
            return
        if self.shared_shares is not None:
            yield from self._parse_post_shared(fields, urls, code, json_url)
            return
        if code in self._shares:
            self._count("share/cache_hit")
            yield self._article(merge_share(fields, self._shares[code]), urls)
            return
        waiting = self._waiting.setdefault(code, [])
        waiting.append(_Waiting(fields, urls))
        self._job_state().setdefault(STATE_WAITING, {}).setdefault(code, []).append(response.url)
        if len(waiting) == 1:
            yield Request(
                json_url,
                callback=self.parse_share,
                errback=self.share_failed,
                cb_kwargs={"code": code},
                priority=PRIORITY[finews.SHARE_JSON],
                dont_filter=True,  # fetched once per article id: self._waiting/_shares decide
            )

    def _parse_post_shared(
        self, fields: PostFields, urls: list[str], code: str, json_url: str
    ) -> Iterator[Any]:
        """Distributed mode: a post and its share JSON may be handled by different
        workers, so the answer and the waiting posts live in Redis
        (:mod:`newscrawl.distributed.shares`)."""
        assert self.shared_shares is not None
        found, share = self.shared_shares.wait(code, fields, urls)
        if found:
            self._count("share/cache_hit")
            yield self._article(merge_share(fields, share), urls)
            return
        yield Request(
            json_url,
            callback=self.parse_share,
            errback=self.share_failed,
            cb_kwargs={"code": code},
            priority=PRIORITY[finews.SHARE_JSON],
            meta=self.shared_shares.request_meta(code),  # once per article id, across workers
        )

    async def parse_share(self, response: Response, code: str) -> AsyncIterator[Article]:
        answer = await self.reader.share(response.body)
        share = answer.share
        self._count("share/fetched" if share is not None else "share/invalid")
        if share is None:
            logger.warning("Share JSON without article text (%s): %s", answer.bad, response.url)
            self._report_bad_answer(response, f"{runs.BAD_SHARE}:{answer.bad}")
        for article in self._release(code, share):
            yield article

    def share_failed(self, failure: Failure) -> Iterator[Article]:
        request = failure.request  # type: ignore[attr-defined]
        self._count("share/failed")
        logger.warning("Share JSON failed (%s): %s", failure.getErrorMessage(), request.url)
        runs.report_request_failure(self.crawler, failure)
        yield from self._release(request.cb_kwargs["code"], None)

    def _release(self, code: str, share: ShareFields | None) -> Iterator[Article]:
        if self.shared_shares is not None:
            share, posts = self.shared_shares.release(code, share)
            for fields, urls in posts:
                yield self._article(merge_share(fields, share), urls)
            return
        self._shares[code] = share
        while len(self._shares) > self._share_cache_size:
            self._shares.popitem(last=False)
        self._job_state().get(STATE_WAITING, {}).pop(code, None)
        for waiting in self._waiting.pop(code, []):
            yield self._article(merge_share(waiting.fields, share), waiting.urls)

    # --- items -------------------------------------------------------------

    def _article(self, fields: PostFields, urls: list[str]) -> Article:
        canonical = finews.canonical_url(fields.canonical_url or urls[0])
        return Article(
            key=finews.article_key(fields.info_code, canonical),
            site=finews.SITE,
            kind=fields.kind,
            info_code=fields.info_code,
            url=canonical,
            urls=urls,
            title=fields.title,
            published_at=fields.published_at,
            published_at_source=fields.published_at_source,
            derived_fields=list(fields.derived_fields),
            categories=list(fields.categories),
            tags=list(fields.tags),
            source=fields.source,
            authors=list(fields.authors),
            correspondents=list(fields.correspondents),
            body=fields.body,
            summary=fields.summary,
            images=[dict(image) for image in fields.images],
            share_url=fields.share_url,
            origin_url=fields.origin_url,
            outlinks=list(fields.outlinks),
        )

    def _count(self, key: str) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"newscrawl/{key}")

    async def closed(self, reason: str) -> None:
        """Scrapy awaits it (``spider_closed``); a coroutine, not a Deferred,
        which Scrapy 2.14+ calls deprecated (a warning in every crawl's log)."""
        # the dedup pipeline's last batch may be in the parse process: answered, not cut
        await self.reader.wait_idle()
        if self.reader.broken:
            self._count("parse/worker_died")
        cpu = self.reader.close()
        if self.crawler.stats is not None and self.reader.processes:
            self.crawler.stats.set_value("newscrawl/parse/worker_cpu_seconds", round(cpu, 3))
        if self._waiting and self.settings.get("JOBDIR"):
            logger.info(
                "%d articles wait for their share JSON; saved in JOBDIR, finished on resume",
                len(self._waiting),
            )
        elif self._waiting:
            logger.error(
                "%d articles still waited for their share JSON at close: %s",
                len(self._waiting),
                sorted(self._waiting)[:20],
            )


def _meta(response: Response) -> dict[str, Any]:
    """The meta of the response's request (empty for a response made without one)."""
    return response.request.meta if response.request is not None else {}


def _seen_urls(response: Response, fields: PostFields) -> list[str]:
    """Every page the post was seen at, each in its canonical form: requested,
    redirected from, and declared by the page itself (canonical link, og:url;
    made absolute by the extraction), in first-seen order. Only canonical
    forms: which form of a URL (alias host, http, a tracking query,
    ``index.html``) is requested first depends on crawl order, and the
    fingerprinter fetches only that one, so raw forms would make ``urls``
    differ between two crawls of the same site."""
    seen = [*response.meta.get("redirect_urls", []), response.url, *fields.declared_urls]
    return list(dict.fromkeys(finews.canonical_url(url) for url in seen if url))
