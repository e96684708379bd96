"""FinewsSpider: where to go on the finews site. What a page means is in
``newscrawl.extract``; what to keep is in the pipelines."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from scrapy import Request, Spider
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure

from newscrawl.extract.post import PostFields, parse_post_page
from newscrawl.extract.share import ShareFields, merge_share, parse_share_json
from newscrawl.items import Article
from newscrawl.sites import finews

logger = logging.getLogger(__name__)

#: page kinds the spider follows (share pages are reached through their JSON)
FOLLOW = frozenset({finews.HOME, finews.CATEGORY, finews.POST})
#: request priorities: finish articles before opening more lists
PRIORITY = {finews.SHARE_JSON: 20, finews.POST: 10, finews.CATEGORY: 0, finews.HOME: 0}


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

    Settings: ``NEWSCRAWL_SHARE_CACHE_SIZE`` (share JSON answers kept for a post
    met again in another category).
    """

    name = "finews"
    allowed_domains: ClassVar[list[str]] = list(finews.ALLOWED_HOSTS)

    def __init__(self, start_url: str | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_url = start_url or finews.HOME_URL
        # posts whose share JSON is in flight, by article id
        self._waiting: dict[str, list[_Waiting]] = {}
        # share JSON answers already fetched (None: failed), by article id
        self._shares: OrderedDict[str, ShareFields | None] = OrderedDict()

    @property
    def _share_cache_size(self) -> int:
        return self.settings.getint("NEWSCRAWL_SHARE_CACHE_SIZE", 10_000)

    async def start(self) -> AsyncIterator[Any]:
        yield Request(self.start_url, callback=self.parse)

    # --- pages -----------------------------------------------------------

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        """Any site page: follow its links; a post page also gives an article."""
        if not isinstance(response, TextResponse):
            self._count("pages/not_text")
            return
        kind = finews.route(response.url)
        self._count(f"pages/{kind}")
        yield from self._follow(response)
        if kind == finews.POST:
            yield from self._parse_post(response)

    def _follow(self, response: TextResponse) -> Iterator[Request]:
        for href in response.css("a::attr(href)").getall():
            href = href.strip()
            if not href or href.startswith(("#", "javascript:", "mailto:")):
                continue
            url = response.urljoin(href)
            kind = finews.route(url)
            if kind in FOLLOW:
                yield Request(url, callback=self.parse, priority=PRIORITY[kind])
            elif kind == finews.OFFSITE:
                self._count("links/offsite")

    def _parse_post(self, response: TextResponse) -> Iterator[Any]:
        fields = parse_post_page(response.text, response.url)
        if fields is None:
            self._count("pages/not_article")
            logger.warning("Not an article page, skipped: %s", response.url)
            return
        urls = _seen_urls(response, fields)
        code = fields.info_code
        json_url = finews.share_json_url(fields.share_url) if fields.share_url else None
        if code is None or json_url is None:
            yield self._article(merge_share(fields, None), urls)
            return
        if code in self._shares:
            self._count("share/cache_hit")
            yield self._article(merge_share(fields, self._shares[code]), urls)
            return
        waiting = self._waiting.setdefault(code, [])
        waiting.append(_Waiting(fields, urls))
        if len(waiting) == 1:
            yield Request(
                json_url,
                callback=self.parse_share,
                errback=self.share_failed,
                cb_kwargs={"code": code},
                priority=PRIORITY[finews.SHARE_JSON],
                dont_filter=True,  # fetched once per article id: self._waiting/_shares decide
            )

    def parse_share(self, response: Response, code: str) -> Iterator[Article]:
        share = parse_share_json(response.body)
        self._count("share/fetched" if share is not None else "share/invalid")
        if share is None:
            logger.warning("Share JSON without article text: %s", response.url)
        yield from self._release(code, share)

    def share_failed(self, failure: Failure) -> Iterator[Article]:
        request = failure.request  # type: ignore[attr-defined]
        self._count("share/failed")
        logger.warning("Share JSON failed (%s): %s", failure.getErrorMessage(), request.url)
        yield from self._release(request.cb_kwargs["code"], None)

    def _release(self, code: str, share: ShareFields | None) -> Iterator[Article]:
        self._shares[code] = share
        while len(self._shares) > self._share_cache_size:
            self._shares.popitem(last=False)
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

    def closed(self, reason: str) -> None:
        if self._waiting:
            logger.error(
                "%d articles still waited for their share JSON at close: %s",
                len(self._waiting),
                sorted(self._waiting)[:20],
            )


def _seen_urls(response: Response, fields: PostFields) -> list[str]:
    """Every URL the page was seen at: requested, redirected from, and declared
    by the page itself (canonical link, og:url)."""
    seen = [*response.meta.get("redirect_urls", []), response.url, *fields.declared_urls]
    return list(dict.fromkeys(url for url in seen if url))
