"""Run records: one document per crawl in ``crawl_runs``, and the failures in it.

Every component that gives up on a URL reports it with :func:`report_failure`
(or :func:`report_request_failure` from an errback); :class:`RunRecorder`
collects the reports and, when the crawl ends, writes the crawl's document
through the shared store (``newscrawl.storage.client.open_store``), off the
reactor thread. The document (see the README, "Run records")::

    {
      "_id": "20260101T080000Z-1a2b3c4d",   # the run id, = articles' last_run_id
      "site": "finews", "spider": "finews",
      "started_at": <date>, "finished_at": <date>, "elapsed_seconds": 12.3,
      "finish_reason": "finished",          # or shutdown, store_unavailable, ...
      "pages_fetched": 950, "requests": 1130, "retries": 140,
      "articles": {"new": 470, "updated": 0, "unchanged": 0, "merged": 12,
                   "near_duplicate": 9, "exact_duplicate": 0, "gone": 0,
                   "write_errors": 0},
      "incremental": {"known_pages": 0, "skipped_links": 0, "not_modified": 0,
                      "rechecked": 0, "retried_failed": 0},   # newscrawl.incremental
      "dropped": {"MissingTitle": 1},       # item drops by reason
      "errors": 0,                          # ERROR log lines
      "failed_count": 27,
      "failed_by_reason": {"http_503": 4, "timeout": 1, ...},
      "failed_urls": [{"url": ..., "reason": "http_503", "detail": "...",
                       "retry": true, "attempts": 4, "at": <date>}, ...],
      "failed_urls_truncated": 0,
      "user_agent": "newscrawl/0.1 (+https://...)",
    }

``retry`` says whether a later run should try the URL again (first:
:func:`urls_to_retry` gives them to :mod:`newscrawl.incremental`): true for
network errors, 5xx, bad pages and share answers that may be whole next time;
false for what a rule refused (robots.txt, other hosts, private addresses,
traps) and for answers that will not change (404 and soft 404, too large,
redirect loops).

Settings: ``NEWSCRAWL_RUNS_ENABLED`` (True), ``NEWSCRAWL_RUNS_MAX_FAILED``
(10000: failed URLs kept in the document; the rest are only counted).
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymongo import DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError, PyMongoError
from scrapy import signals
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
    NotConfigured,
)
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.asyncio import run_in_thread
from twisted.internet import defer
from twisted.internet import error as neterror

from newscrawl.storage.errors import StorageUnavailable

if TYPE_CHECKING:
    from pymongo.database import Database
    from scrapy import Request
    from scrapy.crawler import Crawler
    from twisted.python.failure import Failure

    from newscrawl.storage.client import Store

logger = logging.getLogger(__name__)

CRAWL_RUNS = "crawl_runs"
RUN_INDEXES = [IndexModel([("site", 1), ("started_at", DESCENDING)], name="site_started_at")]

# -- reasons -----------------------------------------------------------------------------
# network
TIMEOUT = "timeout"
CONNECTION_LOST = "connection_lost"  # reset before or during the answer, data loss
CONNECTION_REFUSED = "connection_refused"
DNS = "dns"
TLS = "tls"
PROXY = "proxy"  # the proxy refused the tunnel
DOWNLOAD_ERROR = "download_error"  # any other download failure
# answers (plus http_<status>)
TOO_LARGE = "too_large"  # above DOWNLOAD_MAXSIZE
DECOMPRESSION_BOMB = "decompression_bomb"  # above DOWNLOAD_MAXSIZE once decompressed
BAD_PAGE = "bad_page"  # prefix: bad_page:<kind> (newscrawl.extract.pages: empty, truncated, ...)
BAD_SHARE = "bad_share"  # prefix: bad_share:<kind> (a share JSON: invalid_json, no_text, ...)
# rules
REDIRECT_LOOP = "redirect_loop"
REDIRECT_LIMIT = "redirect_limit"  # more than REDIRECT_MAX_TIMES redirects
OFFSITE = "offsite"  # a host outside the site's allowlist (a redirect to one, mostly)
PRIVATE_ADDRESS = "private_address"  # private, loopback or link-local, not allowlisted
ROBOTS = "robots_txt"
TRAP = "trap"  # a chain of pages without an article, longer than the trap rule allows
DEPTH_LIMIT = "depth_limit"
RETRY_PENDING = "retry_pending"  # a retry was still waiting for its backoff when the crawl ended
IGNORED = "ignored"  # another component ignored the request

#: reasons a later run should retry (besides http 5xx/408/429 and bad pages)
RETRY_LATER = frozenset(
    {
        TIMEOUT,
        CONNECTION_LOST,
        CONNECTION_REFUSED,
        DNS,
        TLS,
        PROXY,
        DOWNLOAD_ERROR,
        RETRY_PENDING,
    }
)

#: signal: a URL failed for good; arguments url, reason, detail, attempts
url_failed = object()


class RefusedRequest(IgnoreRequest):
    """A request a rule refused (boundary, redirect, trap), with a reason from
    this module."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def retry_next_run(reason: str) -> bool:
    """Whether a URL that failed for ``reason`` is worth trying again next run.

    >>> [retry_next_run(r) for r in ("http_503", "http_429", "http_404", "timeout")]
    [True, True, False, True]
    >>> [retry_next_run(r) for r in ("bad_page:truncated", "bad_page:not_found", "robots_txt")]
    [True, False, False]
    >>> retry_next_run("bad_share:invalid_json"), retry_next_run("bad_page:too_large")
    (True, False)
    """
    if reason.startswith("http_"):
        code = reason[len("http_") :]
        return code.startswith("5") or code in ("408", "429")
    if reason.startswith((BAD_PAGE + ":", BAD_SHARE + ":")):
        kind = reason.split(":", 1)[1]
        return kind not in ("not_found", "too_large")
    return reason in RETRY_LATER


def _ignored_reason(message: str) -> str:
    """The reason of an IgnoreRequest raised by one of Scrapy's own components.

    >>> _ignored_reason("Forbidden by robots.txt")
    'robots_txt'
    >>> _ignored_reason("Filtered offsite request to 'x.example'")
    'offsite'
    >>> _ignored_reason("Ignored <200 https://h/> because its body (9 B compressed, 99 B "
    ...     "decompressed so far) exceeded DOWNLOAD_MAXSIZE (10 B) during decompression.")
    'decompression_bomb'
    >>> _ignored_reason("max redirections reached"), _ignored_reason("why not")
    ('redirect_limit', 'ignored')
    """
    lower = message.lower()
    if "robots.txt" in lower:
        return ROBOTS
    if "offsite" in lower:
        return OFFSITE
    if "decompression" in lower:
        return DECOMPRESSION_BOMB
    if "max redirections" in lower:
        return REDIRECT_LIMIT
    return IGNORED


def failure_reason(exc: BaseException) -> tuple[str, str]:
    """(reason, detail) for an exception that ended a request.

    >>> failure_reason(RefusedRequest("offsite", "redirect to http://x/"))
    ('offsite', 'redirect to http://x/')
    >>> failure_reason(DownloadTimeoutError("Getting https://h/ took longer than 1.0 seconds."))[0]
    'timeout'
    >>> failure_reason(neterror.ConnectionLost("reset"))[0], failure_reason(ValueError("?"))[0]
    ('connection_lost', 'download_error')
    >>> failure_reason(DownloadCancelledError("Expected to receive 9 bytes which is larger "
    ...                                       "than download max size (5) in request <GET h>."))[0]
    'too_large'
    """
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, RefusedRequest):
        return exc.reason, exc.detail
    if isinstance(exc, HttpError):
        response = exc.response
        return f"http_{response.status}", f"HTTP {response.status}"
    if isinstance(exc, IgnoreRequest):
        return _ignored_reason(detail), detail
    if isinstance(exc, DownloadTimeoutError | neterror.TimeoutError | defer.TimeoutError):
        return TIMEOUT, detail
    if isinstance(exc, DownloadCancelledError):
        return (TOO_LARGE if "max size" in detail else DOWNLOAD_ERROR), detail
    if isinstance(exc, DownloadConnectionRefusedError | neterror.ConnectionRefusedError):
        return CONNECTION_REFUSED, detail
    if isinstance(exc, CannotResolveHostError | neterror.DNSLookupError):
        return DNS, detail
    name = type(exc).__name__
    if name == "TunnelError":
        return PROXY, detail
    if "SSL" in name or "TLS" in name or type(exc).__module__.startswith("OpenSSL"):
        return TLS, detail
    if isinstance(exc, neterror.ConnectionLost | neterror.ConnectionDone) or name in (
        "ResponseFailed",
        "ResponseNeverReceived",
        "ResponseDataLossError",
        "PotentialDataLoss",
        "DownloadFailedError",
    ):
        return CONNECTION_LOST, detail
    return DOWNLOAD_ERROR, detail


def first_url(request: Request) -> str:
    """The URL a request was made for (before any redirect)."""
    redirects = request.meta.get("redirect_urls") or []
    return str(redirects[0]) if redirects else request.url


def report_failure(
    crawler: Crawler, url: str, reason: str, detail: str = "", attempts: int = 1
) -> None:
    """Tell the run record that ``url`` failed for good."""
    crawler.signals.send_catch_log(
        signal=url_failed, url=url, reason=reason, detail=detail, attempts=attempts
    )


def report_request_failure(crawler: Crawler, failure: Failure) -> tuple[str, str]:
    """Report the request of an errback's ``failure``; returns (reason, detail)."""
    request: Request = failure.request  # type: ignore[attr-defined]
    reason, detail = failure_reason(failure.value or Exception("unknown failure"))
    attempts = int(request.meta.get("retry_times", 0)) + 1
    report_failure(crawler, first_url(request), reason, detail, attempts)
    return reason, detail


# -- the document ------------------------------------------------------------------------


def run_document(
    *,
    run_id: str,
    site: str,
    spider: str,
    started_at: datetime,
    finished_at: datetime,
    finish_reason: str,
    stats: Mapping[str, Any],
    failures: list[dict[str, Any]],
    max_failed: int = 10_000,
    user_agent: str | None = None,
) -> dict[str, Any]:
    """The ``crawl_runs`` document of one crawl, from its stats and failures.

    >>> t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 9, tzinfo=UTC)
    >>> doc = run_document(run_id="r1", site="finews", spider="finews", started_at=t0,
    ...     finished_at=t1, finish_reason="finished",
    ...     stats={"downloader/response_count": 5, "newscrawl/store/inserted": 2,
    ...            "item_dropped_reasons_count/MissingTitle": 1, "retry/count": 3},
    ...     failures=[{"url": "https://h/a", "reason": "http_503"},
    ...               {"url": "https://h/b", "reason": "robots_txt"}], max_failed=1)
    >>> doc["articles"]["new"], doc["dropped"], doc["retries"], doc["elapsed_seconds"]
    (2, {'MissingTitle': 1}, 3, 9.0)
    >>> doc["failed_count"], doc["failed_by_reason"], doc["failed_urls_truncated"]
    (2, {'http_503': 1, 'robots_txt': 1}, 1)
    >>> doc["failed_urls"]
    [{'url': 'https://h/a', 'reason': 'http_503'}]
    """
    store = "newscrawl/store/"
    incremental = "newscrawl/incremental/"
    dropped = "item_dropped_reasons_count/"
    by_reason = Counter(str(f["reason"]) for f in failures)
    return {
        "_id": run_id,
        "site": site,
        "spider": spider,
        "started_at": started_at,
        "finished_at": finished_at,
        "elapsed_seconds": round((finished_at - started_at).total_seconds(), 3),
        "finish_reason": finish_reason,
        "pages_fetched": int(stats.get("downloader/response_count", 0)),
        "requests": int(stats.get("downloader/request_count", 0)),
        "retries": int(stats.get("retry/count", 0)),
        "articles": {
            "new": int(stats.get(store + "inserted", 0)),
            "updated": int(stats.get(store + "updated", 0)),
            "unchanged": int(stats.get(store + "unchanged", 0)),
            "merged": int(stats.get(store + "merged", 0)),
            "near_duplicate": int(stats.get("newscrawl/dedup/near", 0)),
            "exact_duplicate": int(stats.get("newscrawl/dedup/exact", 0)),
            "gone": int(stats.get(incremental + "gone", 0)),
            "write_errors": int(stats.get(store + "write_errors", 0)),
        },
        "incremental": {
            "known_pages": int(stats.get(incremental + "known", 0)),
            "skipped_links": int(stats.get(incremental + "skipped", 0)),
            "not_modified": int(stats.get("newscrawl/http/not_modified", 0)),
            "rechecked": int(stats.get(incremental + "rechecked", 0)),
            "retried_failed": int(stats.get(incremental + "retried", 0)),
        },
        "dropped": {
            k[len(dropped) :]: v for k, v in sorted(stats.items()) if k.startswith(dropped)
        },
        "errors": int(stats.get("log_count/ERROR", 0)),
        "failed_count": len(failures),
        "failed_by_reason": dict(sorted(by_reason.items())),
        "failed_urls": failures[:max_failed],
        "failed_urls_truncated": max(0, len(failures) - max_failed),
        "user_agent": user_agent,
    }


def urls_to_retry(db: Database[dict[str, Any]], site: str, limit: int = 10_000) -> list[str]:
    """The URLs the latest recorded run of ``site`` failed for good and that
    are worth trying again (``retry``): the next run fetches them first."""
    last = db[CRAWL_RUNS].find_one(
        {"site": site}, {"failed_urls": 1}, sort=[("started_at", DESCENDING)]
    )
    if last is None:
        return []
    failed = last.get("failed_urls") or []
    return [str(f["url"]) for f in failed if f.get("retry") and f.get("url")][:limit]


#: the counters of a run document that add up over the workers of one run
_SUMMED = (
    "pages_fetched",
    "requests",
    "retries",
    "errors",
    "failed_count",
    "failed_urls_truncated",
)
_SUMMED_GROUPS = ("articles", "incremental", "dropped", "failed_by_reason")


def worker_name() -> str:
    """This process, as the run record names it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_update(doc: Mapping[str, Any], worker: str, max_failed: int) -> dict[str, Any]:
    """The update that adds one process's run document to the run's record.

    The workers of a distributed crawl share one run id: each adds its part
    in one atomic update (counters summed, the earliest start and the latest
    end kept, failed URLs appended up to ``max_failed``), and its own line
    under ``workers``. A crawl with one process writes the same document it
    would alone.

    >>> t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    >>> doc = run_document(run_id="r1", site="finews", spider="finews", started_at=t0,
    ...     finished_at=t1, finish_reason="finished",
    ...     stats={"downloader/response_count": 5, "newscrawl/store/inserted": 2},
    ...     failures=[{"url": "https://h/a", "reason": "http_503"}])
    >>> update = run_update(doc, "h:1", 10)
    >>> update["$inc"]["pages_fetched"], update["$inc"]["articles.new"]
    (5, 2)
    >>> update["$inc"]["failed_by_reason.http_503"], update["$push"]["failed_urls"]["$slice"]
    (1, 10)
    >>> update["$min"], update["$set"]["workers.h:1"]["pages_fetched"]
    ({'started_at': datetime.datetime(2026, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)}, 5)
    """
    inc: dict[str, int] = {name: int(doc.get(name) or 0) for name in _SUMMED}
    for group in _SUMMED_GROUPS:
        for key, value in (doc.get(group) or {}).items():
            inc[f"{group}.{key}"] = int(value)
    return {
        "$setOnInsert": {"site": doc["site"], "spider": doc["spider"]},
        "$min": {"started_at": doc["started_at"]},
        "$max": {"finished_at": doc["finished_at"]},
        "$inc": inc,
        "$push": {
            "failed_urls": {"$each": list(doc.get("failed_urls") or []), "$slice": max_failed}
        },
        "$set": {
            "finish_reason": doc["finish_reason"],
            "user_agent": doc.get("user_agent"),
            f"workers.{worker}": {
                "started_at": doc["started_at"],
                "finished_at": doc["finished_at"],
                "finish_reason": doc["finish_reason"],
                "pages_fetched": doc.get("pages_fetched", 0),
                "errors": doc.get("errors", 0),
            },
        },
    }


def write_run(
    db: Database[dict[str, Any]],
    doc: dict[str, Any],
    worker: str | None = None,
    max_failed: int = 10_000,
) -> None:
    """Add one process's run document to the run's record (blocking).

    Idempotent per worker: a worker already in the record (a retried write)
    is not counted twice. ``elapsed_seconds`` is the run's, from its
    earliest start to its latest end."""
    collection = db[CRAWL_RUNS]
    collection.create_indexes(RUN_INDEXES)
    worker = worker or worker_name()
    try:
        collection.update_one(
            {"_id": doc["_id"], f"workers.{worker}": {"$exists": False}},
            run_update(doc, worker, max_failed),
            upsert=True,
        )
    except DuplicateKeyError:
        logger.info("Run %s already holds this worker's record (%s)", doc["_id"], worker)
    run = collection.find_one({"_id": doc["_id"]}, {"started_at": 1, "finished_at": 1})
    if run is not None and run.get("started_at") and run.get("finished_at"):
        elapsed = (run["finished_at"] - run["started_at"]).total_seconds()
        collection.update_one({"_id": doc["_id"]}, {"$max": {"elapsed_seconds": round(elapsed, 3)}})


class RunRecorder:
    """Collects the URLs that failed for good (the :data:`url_failed` signal) and
    writes the crawl's ``crawl_runs`` document when the engine stops (after the
    spider closed, so late reports such as pending retries are in it).

    Settings: ``NEWSCRAWL_RUNS_ENABLED`` (True), ``NEWSCRAWL_RUNS_MAX_FAILED``
    (10000), the store's (``MONGO_URI``, ``MONGO_DATABASE``, ...), and
    ``NEWSCRAWL_RUN_ID`` (set by the store pipeline's stats when unset).
    Stats: ``newscrawl/failed/<reason>``.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.max_failed = crawler.settings.getint("NEWSCRAWL_RUNS_MAX_FAILED", 10_000)
        self.failures: dict[str, dict[str, Any]] = {}
        self.store: Store | None = None
        self.started_at = datetime.now(tz=UTC)
        self.finished_at: datetime | None = None
        self.finish_reason: str | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunRecorder:
        if not crawler.settings.getbool("NEWSCRAWL_RUNS_ENABLED", True):
            raise NotConfigured("NEWSCRAWL_RUNS_ENABLED is False: no run record")
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.failed, signal=url_failed)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.engine_stopped, signal=signals.engine_stopped)
        return ext

    async def spider_opened(self) -> None:
        from newscrawl.storage.client import open_crawl_store

        self.started_at = datetime.now(tz=UTC)
        try:
            self.store = await open_crawl_store(self.crawler)
        except (StorageUnavailable, PyMongoError) as exc:
            logger.warning("No run record for this crawl: %s", exc)

    def failed(self, url: str, reason: str, detail: str = "", attempts: int = 1) -> None:
        """Record one URL that failed for good (the first reason given wins)."""
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"newscrawl/failed/{reason}")
        if url in self.failures:
            return
        self.failures[url] = {
            "url": url,
            "reason": reason,
            "detail": detail[:500],
            "retry": retry_next_run(reason),
            "attempts": attempts,
            "at": datetime.now(tz=UTC),
        }
        logger.info("Failed for good (%s): %s %s", reason, url, detail[:200])

    def spider_closed(self, reason: str) -> None:
        self.finished_at = datetime.now(tz=UTC)
        self.finish_reason = reason

    async def engine_stopped(self) -> None:
        if self.store is None:
            return
        store, self.store = self.store, None
        try:
            doc = self.document()
            await run_in_thread(write_run, store.db, doc, None, self.max_failed)
            logger.info(
                "Run %s recorded in %s: %d failed URLs",
                doc["_id"],
                CRAWL_RUNS,
                doc["failed_count"],
            )
        except PyMongoError as exc:
            logger.error("Could not write the run record: %s", exc)
        finally:
            await run_in_thread(store.close)

    def document(self) -> dict[str, Any]:
        """The run document as it stands."""
        from newscrawl.pipelines.mongo import new_run_id

        assert self.crawler.stats is not None
        stats = self.crawler.stats.get_stats()
        spider = self.crawler.spider
        run_id = (
            stats.get("newscrawl/store/run_id")
            or self.crawler.settings.get("NEWSCRAWL_RUN_ID")
            or new_run_id(self.started_at)
        )
        name = spider.name if spider is not None else "?"
        return run_document(
            run_id=str(run_id),
            site=str(getattr(spider, "site", None) or name),
            spider=name,
            started_at=self.started_at,
            finished_at=self.finished_at or datetime.now(tz=UTC),
            finish_reason=self.finish_reason or str(stats.get("finish_reason", "unknown")),
            stats=stats,
            failures=list(self.failures.values()),
            max_failed=self.max_failed,
            user_agent=stats.get("newscrawl/user_agent"),
        )
