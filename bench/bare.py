"""The limit: a bare Scrapy spider that fetches what ``finews`` fetches and does nothing else.

It follows the same links as :class:`newscrawl.spiders.finews.FinewsSpider`
(home, category and post pages, with the same priorities) and fetches each
post's share JSON, but extracts nothing, yields no item and stores nothing.
It runs with the project's settings (concurrency, AutoThrottle, robots.txt,
canonical request fingerprints) but none of the project's components
(:data:`BARE_SETTINGS`), so the pages per second it reaches is what Scrapy
itself allows on this machine with these settings.

::

    python -m bench.bare --stats-out stats.json -a start_url=http://finews.withounder.com/
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

from scrapy import Request, Spider
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response, TextResponse

from newscrawl.runner import project_settings
from newscrawl.sites import finews
from newscrawl.spiders.finews import FOLLOW, PRIORITY
from newscrawl.summary import jsonable

#: what differs from the product's settings: none of the project's components
#: (pipelines, extensions, middlewares, add-ons) runs; Scrapy's own do
BARE_SETTINGS: dict[str, Any] = {
    "ITEM_PIPELINES": {},
    "EXTENSIONS": {},
    "DOWNLOADER_MIDDLEWARES": {},
    "SPIDER_MIDDLEWARES": {},
    "ADDONS": {},
}


class BareSpider(Spider):
    """Follows the finews links and share JSON; no extraction, no items."""

    name = "bare"
    allowed_domains: ClassVar[list[str]] = list(finews.ALLOWED_HOSTS)

    def __init__(self, start_url: str | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_url = start_url or finews.HOME_URL

    async def start(self) -> AsyncIterator[Any]:
        yield Request(self.start_url, callback=self.parse)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Request]:
        if not isinstance(response, TextResponse):
            return
        post = finews.route(response.url) == finews.POST
        for href in response.css("a::attr(href)").getall():
            href = href.strip()
            if not href or href.startswith(("#", "javascript:", "mailto:")):
                continue
            url = response.urljoin(href)
            kind = finews.route(url)
            if kind in FOLLOW:
                yield Request(url, callback=self.parse, priority=PRIORITY[kind])
            elif post and kind == finews.SHARE_PAGE:
                json_url = finews.share_json_url(url)
                if json_url is not None:
                    yield Request(
                        json_url,
                        callback=self.parse_share,
                        priority=PRIORITY[finews.SHARE_JSON],
                    )

    def parse_share(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        return iter(())


def _pairs(values: list[str]) -> dict[str, str]:
    return dict(value.split("=", 1) for value in values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__)
    parser.add_argument("-s", dest="set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("-a", dest="arg", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--stats-out", help="write the crawl's stats as JSON to this file")
    args = parser.parse_args(argv)
    settings = project_settings({**_pairs(args.set), **BARE_SETTINGS})
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(BareSpider)
    process.crawl(crawler, **_pairs(args.arg))
    process.start()
    assert crawler.stats is not None
    stats = crawler.stats.get_stats()
    if args.stats_out:
        Path(args.stats_out).write_text(json.dumps(jsonable(stats), indent=1, default=str))
    return 0 if stats.get("finish_reason") == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
