"""The two things the distributed scheduler needs from Scrapy's engine that
Scrapy has no public API for, in one place:

- which requests the engine still works on (``engine._slot.inprogress``: a
  request leaves it only after its callback's output was handled, its items
  went through the pipelines and its follow-up requests were scheduled);
- waking the engine when another worker queued requests
  (``engine._slot.nextcall``), instead of waiting for its 5 s heartbeat.

:func:`check` fails the crawl at start if a Scrapy upgrade removed them.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler


def _slot(crawler: Crawler) -> Any:
    return getattr(crawler.engine, "_slot", None)


def check(crawler: Crawler) -> None:
    """Raise RuntimeError unless the engine has the internals used here."""
    slot = _slot(crawler)
    if slot is None or not hasattr(slot, "inprogress") or not hasattr(slot, "nextcall"):
        raise RuntimeError(
            "distributed mode needs Scrapy's engine._slot.inprogress and .nextcall "
            "(present in Scrapy 2.19, the pinned version)"
        )


def in_progress(crawler: Crawler) -> Collection[Request] | None:
    """The requests the engine still works on; None when it has no slot (closed)."""
    slot = _slot(crawler)
    if slot is None:
        return None
    requests: Collection[Request] = slot.inprogress
    return requests


def wake(crawler: Crawler) -> None:
    """Make the engine ask the scheduler for requests (or notice it is idle) now."""
    slot = _slot(crawler)
    if slot is not None and slot.closing is None:
        slot.nextcall.schedule()
