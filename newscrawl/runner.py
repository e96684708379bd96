"""Run one crawl in this process and return its stats (used by the CLI)."""

from __future__ import annotations

import os
from typing import Any

from scrapy.crawler import CrawlerProcess
from scrapy.utils.project import get_project_settings


def project_settings(overrides: dict[str, Any] | None = None) -> Any:
    """The project's settings, wherever the command runs, with overrides at
    command-line priority."""
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "newscrawl.settings")
    settings = get_project_settings()
    settings.setdict(overrides or {}, priority="cmdline")
    return settings


def spider_problem(name: str) -> str | None:
    """Why ``name`` is not a spider of the project, or None when it is.

    >>> spider_problem("finews") is None
    True
    >>> spider_problem("nosuch")
    "no spider named 'nosuch' (the project's spiders: finews)"
    """
    from scrapy.spiderloader import get_spider_loader

    names = sorted(get_spider_loader(project_settings()).list())
    if name in names:
        return None
    return f"no spider named {name!r} (the project's spiders: {', '.join(names) or 'none'})"


def run_crawl(
    spider: str, overrides: dict[str, Any] | None = None, spider_args: dict[str, str] | None = None
) -> dict[str, Any]:
    """Crawl to the end (blocking; the Twisted reactor runs once per process)
    and return the crawl's stats."""
    process = CrawlerProcess(project_settings(overrides))
    crawler = process.create_crawler(spider)
    process.crawl(crawler, **(spider_args or {}))
    process.start()
    assert crawler.stats is not None
    return dict(crawler.stats.get_stats())
