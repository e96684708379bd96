"""Signals sent by the store pipeline.

``articles_stored`` is sent on the reactor thread after every batch write,
so components that must only remember what is really stored (a "seen"
index, run records) can listen to it instead of trusting ``item_scraped``::

    crawler.signals.connect(handler, signal=articles_stored)

    def handler(outcomes: dict[str, str], failed: dict[str, str]) -> None:
        # outcomes: article _id -> "inserted" | "updated" | "unchanged" | "merged"
        # failed: article _id -> error message (not stored)
        ...
"""

from __future__ import annotations

articles_stored = object()
