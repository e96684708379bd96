"""The article item: one news story as the spider and pipelines see it.

The stored MongoDB document (``newscrawl/storage/article.schema.json``) has the
same field names, except that ``key`` is stored as ``_id``. Pipelines touch
items through :class:`itemadapter.ItemAdapter`, never by attribute, so a
different item class would work too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: the fields extraction decides: what a replica's ``expected.jsonl`` holds for an
#: article (besides the replica's own labels: reachable, storable, faults, ...) and what
#: tests and ``make eval`` compare with stored documents
EXTRACTED_FIELDS = (
    "key",
    "kind",
    "info_code",
    "url",
    "title",
    "published_at",
    "published_at_source",
    "derived_fields",
    "categories",
    "tags",
    "source",
    "authors",
    "correspondents",
    "body",
    "summary",
    "images",
    "share_url",
    "origin_url",
)

#: ``kind`` values
NEWS = "news"
NOTICE = "notice"


@dataclass
class Image:
    src: str
    caption: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"src": self.src, "caption": self.caption}


@dataclass
class Article:
    """One article. Fields set by the store (version, first_seen_at, ...) are
    absent until it is written."""

    key: str = ""  # stable key, stored as _id: "finews:<info_code>" or "finews:url:<sha1>"
    site: str = ""  # site name, e.g. "finews"
    kind: str = NEWS  # NEWS or NOTICE (site notices are not news)
    info_code: str | None = None  # the site's article id, e.g. NW202202182281010830
    url: str = ""  # canonical URL
    urls: list[str] = field(default_factory=list)  # every page it was seen at, canonical forms
    title: str = ""
    published_at: datetime | None = None  # aware, UTC
    published_at_source: str | None = None  # page | share_json | info_code
    derived_fields: list[str] = field(default_factory=list)  # fields not read from the page
    categories: list[str] = field(default_factory=list)  # category slugs
    tags: list[str] = field(default_factory=list)
    source: str | None = None  # media name, e.g. 大众日报
    authors: list[str] = field(default_factory=list)  # reporters
    correspondents: list[str] = field(default_factory=list)  # 通讯员
    body: str = ""  # clean text, paragraphs joined by "\n"
    summary: str = ""
    images: list[dict[str, Any]] = field(default_factory=list)  # {"src", "caption"}
    share_url: str | None = None
    origin_url: str | None = None  # third-party origin article, recorded not followed
    outlinks: list[str] = field(default_factory=list)  # other off-site links, not followed
