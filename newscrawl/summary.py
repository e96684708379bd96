"""The end-of-crawl summary, from the crawl's stats. Pure: stats in, text out."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

STORE = "newscrawl/store/"
DROPPED = "item_dropped_reasons_count/"


def summarize(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers a person wants after a crawl.

    >>> s = summarize({"downloader/response_count": 10, "newscrawl/store/inserted": 3,
    ...   "newscrawl/dedup/merged": 1, "item_dropped_reasons_count/MissingTitle": 2,
    ...   "elapsed_time_seconds": 1.5, "finish_reason": "finished"})
    >>> s["articles_stored"], s["merged"], s["dropped"], s["pages_fetched"]
    (3, 1, {'MissingTitle': 2}, 10)
    """
    store = {k[len(STORE) :]: v for k, v in stats.items() if k.startswith(STORE)}
    return {
        "finish_reason": stats.get("finish_reason"),
        "pages_fetched": stats.get("downloader/response_count", 0),
        "requests_failed": stats.get("downloader/exception_count", 0),
        "articles_scraped": stats.get("item_scraped_count", 0),
        "articles_stored": sum(store.get(k, 0) for k in ("inserted", "updated", "unchanged")),
        "new": store.get("inserted", 0),
        "updated": store.get("updated", 0),
        "unchanged": store.get("unchanged", 0),
        "merged": stats.get("newscrawl/dedup/merged", 0),
        "dropped": {k[len(DROPPED) :]: v for k, v in stats.items() if k.startswith(DROPPED)},
        "write_errors": store.get("write_errors", 0),
        "errors_logged": stats.get("log_count/ERROR", 0),
        "elapsed_seconds": round(float(stats.get("elapsed_time_seconds", 0.0)), 2),
    }


def format_summary(stats: Mapping[str, Any], where: str | None = None) -> str:
    """Human-readable lines.

    >>> print(format_summary({"downloader/response_count": 4, "newscrawl/store/inserted": 2,
    ...   "elapsed_time_seconds": 2.0, "finish_reason": "finished"}, where="mongodb://h/"))
    crawl finished in 2.0 s
      pages fetched      4 (0 failed)
      articles stored    2 (new 2, updated 0, unchanged 0)
      merged             0 (same article reached again through another URL or category)
      dropped            0
      data               mongodb://h/
    """
    s = summarize(stats)
    dropped = s["dropped"]
    dropped_text = str(sum(dropped.values()))
    if dropped:
        dropped_text += " (" + ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())) + ")"
    lines = [
        f"crawl {s['finish_reason'] or 'ended'} in {s['elapsed_seconds']} s",
        f"  pages fetched      {s['pages_fetched']} ({s['requests_failed']} failed)",
        f"  articles stored    {s['articles_stored']} (new {s['new']}, updated {s['updated']},"
        f" unchanged {s['unchanged']})",
        f"  merged             {s['merged']} (same article reached again through another URL"
        " or category)",
        f"  dropped            {dropped_text}",
    ]
    if stats.get("newscrawl/store/error"):
        lines.append(f"  store error        {stats['newscrawl/store/error']}")
    if s["write_errors"]:
        lines.append(f"  write errors       {s['write_errors']} (see the log)")
    if s["errors_logged"]:
        lines.append(f"  errors logged      {s['errors_logged']} (see the log)")
    if where:
        lines.append(f"  data               {where}")
    return "\n".join(lines)


def jsonable(stats: Mapping[str, Any]) -> dict[str, Any]:
    """Stats with datetimes as ISO strings, for JSON files.

    >>> from datetime import timezone
    >>> jsonable({"start_time": datetime(2026, 1, 1, tzinfo=timezone.utc), "n": 1})
    {'start_time': '2026-01-01T00:00:00+00:00', 'n': 1}
    """
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in stats.items()}
