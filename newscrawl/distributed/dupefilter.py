"""The shared request dupefilter, with our canonical fingerprints.

scrapy-redis 0.9.1's ``RFPDupeFilter`` computes its own fingerprint
(``w3lib.canonicalize_url`` of the raw URL): the alias host, http/https and
the two category URL forms would each be fetched again. This one asks the
crawler's ``REQUEST_FINGERPRINTER_CLASS`` (``CanonicalFingerprinter``), so a
page is fetched once across every worker, as in a single process.

A request may carry ``meta[DEDUPE_KEY]``: it is then deduplicated by that key
instead (the spider keys share JSON requests by article id).
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

from scrapy_redis.dupefilter import RFPDupeFilter

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

#: request meta key: deduplicate by this string instead of the URL fingerprint
DEDUPE_KEY = "newscrawl_dedupe_key"


def key_fingerprint(key: str) -> str:
    """The fingerprint of a ``DEDUPE_KEY`` (hex, like request fingerprints).

    >>> key_fingerprint("share-json:NW202202182281010830")[:12]
    'e5c8a6a8145c'
    """
    return hashlib.sha1(b"dedupe-key\0" + key.encode()).hexdigest()


class CanonicalRedisDupeFilter(RFPDupeFilter):  # type: ignore[misc]
    """A Redis set of request fingerprints shared by all workers.

    Settings: ``SCHEDULER_DUPEFILTER_KEY`` (default ``<prefix>:dupefilter``, the
    prefix being ``NEWSCRAWL_DISTRIBUTED_PREFIX``),
    ``DUPEFILTER_DEBUG``, ``REQUEST_FINGERPRINTER_CLASS`` (through the crawler),
    and the Redis connection settings (``REDIS_URL``, ``REDIS_PARAMS``).

    ``close()`` keeps the set: other workers still use it; the last worker of
    a finished crawl deletes it (see ``frontier.Frontier.leave``).
    """

    def __init__(self, server: Any, key: str, debug: bool = False, crawler: Crawler | None = None):
        super().__init__(server, key, debug)
        if crawler is None:
            raise ValueError("CanonicalRedisDupeFilter needs the crawler (its fingerprinter)")
        self.fingerprinter = crawler.request_fingerprinter

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CanonicalRedisDupeFilter:
        from newscrawl.distributed.connection import key_prefix, redis_from_settings

        settings = crawler.settings
        name = crawler.spidercls.name if crawler.spidercls is not None else "spider"
        key = settings.get("SCHEDULER_DUPEFILTER_KEY") or f"{key_prefix(settings, name)}:dupefilter"
        return cls(
            redis_from_settings(settings),
            key=key % {"spider": name},
            debug=settings.getbool("DUPEFILTER_DEBUG"),
            crawler=crawler,
        )

    @classmethod
    def from_spider(cls, spider: Spider) -> CanonicalRedisDupeFilter:
        return cls.from_crawler(spider.crawler)

    @classmethod
    def from_settings(cls, settings: Any) -> CanonicalRedisDupeFilter:
        raise TypeError("CanonicalRedisDupeFilter needs a crawler: use from_crawler()")

    def request_fingerprint(self, request: Request) -> str:
        key = request.meta.get(DEDUPE_KEY)
        if key:
            return key_fingerprint(str(key))
        return self.fingerprinter.fingerprint(request).hex()

    def request_seen(self, request: Request) -> bool:
        added: int = self.server.sadd(self.key, self.request_fingerprint(request))
        return added == 0

    def close(self, reason: str = "") -> None:
        """Keep the shared set (see the class docstring)."""
