"""CleanPipeline: normalise the text and list fields every article shares.

Extraction (``newscrawl.extract``) already produces clean fields for the
pages it knows; this is the last, site-independent pass: no control
characters, stripped strings, no repeated list entries, UTC dates.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC
from typing import Any

from itemadapter import ItemAdapter

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]")
_LINE_BREAKS = re.compile(r"[\r\n\t\v\f\u2028\u2029]+")
TEXT_FIELDS = ("title", "source", "summary", "body", "share_url", "origin_url", "url")
LIST_FIELDS = (
    "urls",
    "categories",
    "tags",
    "authors",
    "correspondents",
    "derived_fields",
    "outlinks",
)


def clean_text(value: str, *, single_line: bool = False) -> str:
    """NFC, no control or zero-width characters, stripped lines, no empty
    lines; inner spaces stay as written (a media name may hold two).

    >>> clean_text(" a\\u200b b \\n\\n c\\x00 ")
    'a b\\nc'
    >>> clean_text(" 标题\\n二  三 ", single_line=True)
    '标题 二  三'
    """
    value = unicodedata.normalize("NFC", value)
    if single_line:
        return _CONTROL.sub("", _LINE_BREAKS.sub(" ", value)).strip()
    value = _CONTROL.sub("", value)
    lines = (line.strip() for line in value.splitlines())
    return "\n".join(line for line in lines if line)


def unique(values: list[Any]) -> list[Any]:
    """Drop repeats and empty strings, keep the order. Strings are stripped but
    inner spaces are kept: a category slug may hold two spaces.

    >>> unique(["a", "b", "a", "", " c ", "x  y"])
    ['a', 'b', 'c', 'x  y']
    """
    out = []
    for value in values:
        if isinstance(value, str):
            value = _CONTROL.sub("", unicodedata.normalize("NFC", value)).strip()
            if not value:
                continue
        if value not in out:
            out.append(value)
    return out


class CleanPipeline:
    """No settings."""

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        for name in TEXT_FIELDS:
            value = adapter.get(name)
            if isinstance(value, str):
                cleaned = clean_text(value, single_line=name not in ("body", "summary"))
                adapter[name] = cleaned or (
                    None if name not in ("title", "body", "summary", "url") else ""
                )
        for name in LIST_FIELDS:
            value = adapter.get(name)
            if isinstance(value, list):
                adapter[name] = unique(value)
        published = adapter.get("published_at")
        if published is not None and published.tzinfo is not None:
            adapter["published_at"] = published.astimezone(UTC)
        return item
