"""Request fingerprints over canonical URLs, so the dupefilter fetches each page once.

Enabled with ``REQUEST_FINGERPRINTER_CLASS = "newscrawl.fingerprint.CanonicalFingerprinter"``.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from newscrawl.sites import canonical_url

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler


class CanonicalFingerprinter:
    """sha1 of method, canonical URL and body: the alias host, http/https, tracking
    parameters and the two category URL forms give one fingerprint."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CanonicalFingerprinter:
        return cls()

    def fingerprint(self, request: Request) -> bytes:
        digest = hashlib.sha1()
        digest.update(request.method.encode())
        digest.update(b"\0")
        digest.update(canonical_url(request.url).encode())
        digest.update(b"\0")
        digest.update(request.body or b"")
        return digest.digest()
