"""The ``NEWSCRAWL_DISTRIBUTED`` switch, as a Scrapy add-on.

Listed in ``ADDONS`` in ``newscrawl/settings.py``; it does nothing unless
``NEWSCRAWL_DISTRIBUTED`` is true (``newscrawl crawl finews --distributed``).
Then, before the settings freeze, it:

- checks that Redis answers (``REDIS_URL``), so a bad URL fails the crawl at
  start with the reason instead of a traceback later;
- sets ``SCHEDULER`` and ``DUPEFILTER_CLASS`` to the distributed ones;
- gives every worker of the crawl the same ``NEWSCRAWL_RUN_ID`` (the first
  worker's, kept in Redis until the crawl finishes), so the store merges the
  workers' sightings of one article as one run's, unless a run id is set.

Redis and scrapy-redis are imported only when the switch is on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import Settings

logger = logging.getLogger(__name__)

SCHEDULER = "newscrawl.distributed.scheduler.DistributedScheduler"
DUPEFILTER = "newscrawl.distributed.dupefilter.CanonicalRedisDupeFilter"


class Distributed:
    """Settings: ``NEWSCRAWL_DISTRIBUTED`` (False), ``REDIS_URL``,
    ``NEWSCRAWL_DISTRIBUTED_PREFIX``, ``NEWSCRAWL_RUN_ID``; the scheduler reads
    the rest (see :class:`~newscrawl.distributed.scheduler.DistributedScheduler`)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Distributed:
        return cls(crawler)

    def update_settings(self, settings: Settings) -> None:
        if not settings.getbool("NEWSCRAWL_DISTRIBUTED", False):
            return
        from newscrawl.distributed.connection import connect, key_prefix
        from newscrawl.distributed.frontier import Frontier
        from newscrawl.pipelines.mongo import new_run_id

        server = connect(settings)  # RedisUnavailable names the URL and the cause
        try:
            assert self.crawler.spidercls is not None
            frontier = Frontier(server, key_prefix(settings, self.crawler.spidercls.name))
            run_id = settings.get("NEWSCRAWL_RUN_ID") or frontier.run_id(new_run_id())
        finally:
            server.close()
        settings.set("SCHEDULER", SCHEDULER, priority="addon")
        settings.set("DUPEFILTER_CLASS", DUPEFILTER, priority="addon")
        priority = max(settings.getpriority("NEWSCRAWL_RUN_ID") or 0, 15)
        settings.set("NEWSCRAWL_RUN_ID", run_id, priority=priority)
        logger.info("Distributed mode: crawl %s, run %s", frontier.prefix, run_id)
        if settings.getbool("NEWSCRAWL_CRAWL_LOCK", False):
            logger.warning(
                "NEWSCRAWL_CRAWL_LOCK is on: the site's lock admits one crawl process, so "
                "only one worker of this distributed crawl will run (turn it off for workers)"
            )
