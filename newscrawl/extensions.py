"""Crawl-wide extensions."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy import signals

from newscrawl.summary import format_summary

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class CrawlSummary:
    """Logs the summary of a crawl when it closes (pages, articles stored,
    merged, dropped by reason, time). No settings."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlSummary:
        ext = cls(crawler)
        crawler.signals.connect(ext.engine_stopped, signal=signals.engine_stopped)
        return ext

    def engine_stopped(self) -> None:
        assert self.crawler.stats is not None
        logger.info("Summary:\n%s", format_summary(self.crawler.stats.get_stats()))
