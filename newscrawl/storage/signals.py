"""Signals sent by the store pipeline.

``articles_stored`` is sent on the reactor thread after every batch write,
so components that must only remember what is really stored (a "seen"
index, run records) can listen to it instead of trusting ``item_scraped``::

    crawler.signals.connect(handler, signal=articles_stored)

    def handler(outcomes: dict[str, str], failed: dict[str, str]) -> None:
        # outcomes: article _id -> "inserted" | "updated" | "unchanged" | "merged"
        # failed: article _id -> why it is not stored (refused by the database:
        #         see articles_rejected; or lost: not even journaled)
        ...

Articles kept in the journal while the database was away are signalled when
they are written, which may be in a later crawl (the journal is replayed
first thing): their ids may then be of articles this crawl never saw.
"""

from __future__ import annotations

articles_stored = object()
