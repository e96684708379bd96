"""ValidatePipeline: an item that is not a storable article is dropped, with
one ``DropItem`` subclass per reason (CoreStats counts
``item_dropped_reasons_count/<Class>``) and a message naming the value."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem

from newscrawl.items import NEWS, NOTICE

logger = logging.getLogger(__name__)


class InvalidArticle(DropItem):
    """Base class of the validation drops."""


class MissingKey(InvalidArticle):
    pass


class MissingTitle(InvalidArticle):
    pass


class MissingDate(InvalidArticle):
    pass


class EmptyArticle(InvalidArticle):
    pass


class BadField(InvalidArticle):
    pass


def check(item: Any) -> None:
    """Raise the InvalidArticle subclass that says why ``item`` can't be stored."""
    adapter = ItemAdapter(item)
    url = adapter.get("url") or "?"
    if not adapter.get("key") or not adapter.get("url"):
        raise MissingKey(f"no key or url: key={adapter.get('key')!r} url={url!r}")
    kind = adapter.get("kind")
    if kind not in (NEWS, NOTICE):
        raise BadField(f"kind={kind!r} at {url}")
    if not adapter.get("title"):
        raise MissingTitle(f"empty title at {url}")
    published = adapter.get("published_at")
    if kind == NEWS and published is None:
        raise MissingDate(f"no published_at at {url}")
    if published is not None and (not isinstance(published, datetime) or published.tzinfo is None):
        raise BadField(f"published_at={published!r} (needs an aware datetime) at {url}")
    if not adapter.get("body") and not adapter.get("summary"):
        raise EmptyArticle(f"neither body nor summary at {url}")
    for name in ("urls", "categories", "tags", "authors", "correspondents", "images"):
        if not isinstance(adapter.get(name), list):
            raise BadField(f"{name}={adapter.get(name)!r} is not a list at {url}")


class ValidatePipeline:
    """No settings."""

    def process_item(self, item: Any) -> Any:
        try:
            check(item)
        except InvalidArticle as exc:
            logger.warning("Dropped %s: %s", type(exc).__name__, exc)
            raise
        return item
