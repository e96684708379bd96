"""Run one crawl in this process and return its stats (used by the CLI)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
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


def setting_problems(overrides: Mapping[str, Any]) -> list[str]:
    """What is wrong with settings given as text (``-s NAME=VALUE``): a value
    Scrapy or newscrawl could not read as the type of the setting's default
    (a number, a boolean, a duration, a JSON object). Found here, the user gets one line
    instead of a traceback from deep in a component.

    >>> setting_problems({"MONGO_BATCH_SIZE": "abc", "MONGO_FLUSH_SECONDS": "0.5",
    ...                   "MONGO_ENABLED": "false", "LOG_LEVEL": "INFO"})
    ["MONGO_BATCH_SIZE='abc': not a number (the default is 100)"]
    >>> setting_problems({"MONGO_ENABLED": "no"})
    ["MONGO_ENABLED='no': not a boolean (1/0, True/False, true/false)"]
    >>> setting_problems({"ITEM_PIPELINES": "{oops"})
    ["ITEM_PIPELINES='{oops': not a JSON object"]
    >>> setting_problems({"NEWSCRAWL_RECHECK_AFTER": "soon", "NEWSCRAWL_STATE_HORIZON": "3d"})
    ["NEWSCRAWL_RECHECK_AFTER='soon': not a duration (e.g. 90, 30s, 10m, 24h, 7d)"]
    >>> setting_problems({"DOWNLOAD_DELAY": "0.25", "NO_SUCH_SETTING": "x"})
    []
    """
    defaults = project_settings()
    problems = []
    for name, value in overrides.items():
        default = defaults.get(name)
        if not isinstance(value, str) or default is None:
            continue
        if isinstance(default, bool):
            if value not in {"0", "1", "True", "true", "False", "false"}:
                problems.append(f"{name}={value!r}: not a boolean (1/0, True/False, true/false)")
        elif isinstance(default, int | float):
            try:
                float(value)  # an int default may still be read as a float (DOWNLOAD_DELAY)
            except ValueError:
                problems.append(f"{name}={value!r}: not a number (the default is {default})")
        elif isinstance(default, str) and _is_duration(default):
            if not _is_duration(value):
                problems.append(f"{name}={value!r}: not a duration (e.g. 90, 30s, 10m, 24h, 7d)")
        elif isinstance(default, Mapping) or hasattr(default, "copy_to_dict"):
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                problems.append(f"{name}={value!r}: not a JSON object")
    return problems


def _is_duration(text: str) -> bool:
    from newscrawl.incremental.policy import parse_duration

    try:
        parse_duration(text)
    except ValueError:
        return False
    return True


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
