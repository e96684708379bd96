"""DedupPipeline: one record per story.

Items with the same key (one article reached through several URLs or
categories) are passed on: the store merges their ``urls`` and
``categories`` into one document. This pipeline counts them.

Stats: ``newscrawl/dedup/merged`` (an article met again in this run).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)


class DedupPipeline:
    """No settings yet."""

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats
        self.seen: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupPipeline:
        assert crawler.stats is not None
        return cls(crawler.stats)

    def process_item(self, item: Any) -> Any:
        key = ItemAdapter(item)["key"]
        if key in self.seen:
            self.stats.inc_value("newscrawl/dedup/merged")
            logger.debug("Article %s met again: urls and categories merged", key)
        else:
            self.seen.add(key)
        return item
