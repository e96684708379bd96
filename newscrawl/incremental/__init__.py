"""Incremental crawling: repeated runs fetch only what is new.

A crawl starts from the home page and ``/feed.xml`` (always fetched, with
``If-None-Match``/``If-Modified-Since`` when the server gave validators), plus
the pages that failed for good in the last run, category pages whose last
check is older than ``NEWSCRAWL_LIST_RECHECK_AFTER``, and stored posts due for
a re-check. Links to posts already stored are not followed; a category link
is followed from a new post (it may list more new posts). A stored article
published within ``NEWSCRAWL_RECHECK_WINDOW`` of the reference time
(``NEWSCRAWL_NOW``, default now) is fetched again at most once per
``NEWSCRAWL_RECHECK_AFTER``; an older one never. A 304 is "unchanged"; a
stored post that answers 404 gets ``gone_at`` (nothing is deleted).

A page counts as seen only once its article is stored (the store's
``articles_stored`` signal), so a failed write or a crawl stopped half-way is
fetched again next run. State lives in MongoDB (``articles`` and
``page_state``), so this works across machines and processes.

- :mod:`~newscrawl.incremental.policy`: the pure rules;
- :mod:`~newscrawl.incremental.state`: loading and writing the state;
- :mod:`~newscrawl.incremental.components`: the extension and middlewares.
"""

from __future__ import annotations

from newscrawl.incremental.components import (
    ConditionalRequests,
    Incremental,
    NotModified,
    SkipKnownPages,
)

#: fields of a stored article kept by the incremental crawl (not by the store)
ARTICLE_FIELDS = ("gone_at",)

__all__ = ["ARTICLE_FIELDS", "ConditionalRequests", "Incremental", "NotModified", "SkipKnownPages"]
