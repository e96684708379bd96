"""Downloader middlewares of newscrawl.

``EncodingMiddleware`` fixes the one thing Scrapy's charset detection gets
wrong: a label that lies. Scrapy trusts the BOM, then the ``Content-Type``
charset, then ``<meta>``; when the header says utf-8 over GBK bytes, or gbk
over UTF-8 bytes, or a page keeps a template's ``<meta charset="UTF-8">``
while its bytes are GBK, the text comes out as mojibake. Honest pages (the
header or the meta right, or no label at all) are left exactly as Scrapy
decodes them. Enable it after decompression (an order below 590)::

    DOWNLOADER_MIDDLEWARES = {"newscrawl.middlewares.EncodingMiddleware": 580}
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response, TextResponse
from scrapy.statscollectors import StatsCollector
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding

from newscrawl.extract.encoding import choose_encoding

logger = logging.getLogger(__name__)

STATS_FIXED = "newscrawl/encoding/fixed"


class EncodingMiddleware:
    """Re-decodes a text response whose declared charset does not fit its
    bytes (see :func:`newscrawl.extract.encoding.choose_encoding`).

    Settings: ``NEWSCRAWL_ENCODING_ENABLED`` (default True).
    Stats: ``newscrawl/encoding/fixed`` and ``newscrawl/encoding/fixed/<from>-><to>``.
    """

    def __init__(self, stats: StatsCollector | None = None) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> EncodingMiddleware:
        if not crawler.settings.getbool("NEWSCRAWL_ENCODING_ENABLED", True):
            raise NotConfigured("NEWSCRAWL_ENCODING_ENABLED is off")
        return cls(crawler.stats)

    def process_response(self, request: Request, response: Response) -> Response:
        if not isinstance(response, TextResponse) or not response.body:
            return response
        content_type = response.headers.get(b"Content-Type") or b""
        header = http_content_type_encoding(content_type.decode("latin-1"))
        meta = html_body_declared_encoding(response.body)
        current = response.encoding
        better = choose_encoding(response.body, current, [header, meta])
        if better is None:
            return response
        if self.stats is not None:
            self.stats.inc_value(STATS_FIXED)
            self.stats.inc_value(f"{STATS_FIXED}/{current}->{better}")
        logger.debug(
            "Charset %s (header %s, meta %s) does not fit the bytes of %s; decoded as %s",
            current,
            header,
            meta,
            response.url,
            better,
        )
        return response.replace(encoding=better)


class FailureErrbackMiddleware:
    """Spider middleware: a request the spider yields without an errback gets the
    spider's ``request_failed`` errback, so a URL that fails for good always
    reaches the run record (:mod:`newscrawl.runs`), whichever code made the
    request. Spiders without ``request_failed`` are left alone. No settings.

    Enable it among the spider middlewares (any order)::

        SPIDER_MIDDLEWARES = {"newscrawl.middlewares.FailureErrbackMiddleware": 40}
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FailureErrbackMiddleware:
        return cls(crawler)

    def _with_errback(self, obj: Any) -> Any:
        if isinstance(obj, Request) and obj.errback is None:
            errback = getattr(self.crawler.spider, "request_failed", None)
            if errback is not None:
                obj.errback = errback
        return obj

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for obj in start:
            yield self._with_errback(obj)

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterator[Any]:
        for obj in result:
            yield self._with_errback(obj)

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        async for obj in result:
            yield self._with_errback(obj)
