"""From items to stored documents, and how a new sighting changes a stored one.

Pure functions (no database): the store pipeline reads the existing documents,
calls :func:`merge` for each item and writes what it returns.

A stored article is the item's fields with ``key`` stored as ``_id``, plus the
store fields (:data:`STORE_FIELDS`). Its *content* (:data:`CONTENT_FIELDS`) is
what a reader sees; a change of content between runs makes a new version and
the previous one is archived. Where an article was seen (:data:`UNION_FIELDS`)
only grows.

The merge takes values as they come and rewrites none: URLs are canonical
because the spider records them so (``urls``: canonical forms only, so a
re-crawl of an unchanged site adds none). Documents stored by earlier versions,
which recorded the raw request forms, keep those; they also hold the page's
declared canonical URL, so a re-crawl adds nothing to them either (at most the
canonical form, once, where the page declared none or spelt it otherwise).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from itemadapter import ItemAdapter

Document = dict[str, Any]

#: the fields whose change makes a new version
CONTENT_FIELDS = (
    "title",
    "published_at",
    "source",
    "authors",
    "correspondents",
    "body",
    "summary",
    "images",
    "share_url",
    "origin_url",
)
#: lists that accumulate every value seen, in first-seen order
UNION_FIELDS = ("urls", "categories", "tags")
#: fields owned by the store, never taken from an item
STORE_FIELDS = (
    "version",
    "content_hash",
    "first_seen_at",
    "last_seen_at",
    "updated_at",
    "last_run_id",
)

INSERTED = "inserted"
UPDATED = "updated"
UNCHANGED = "unchanged"
MERGED = "merged"
OUTCOMES = (INSERTED, UPDATED, UNCHANGED, MERGED)


def to_bson_datetime(value: datetime | None) -> datetime | None:
    """An aware UTC datetime cut to milliseconds (what BSON keeps), so a value
    read back compares (and hashes) equal to the one written. Naive values
    are taken as UTC.

    >>> from datetime import timedelta, timezone
    >>> shanghai = timezone(timedelta(hours=8))
    >>> to_bson_datetime(datetime(2022, 2, 18, 9, 30, 0, 123456, tzinfo=shanghai))
    datetime.datetime(2022, 2, 18, 1, 30, 0, 123000, tzinfo=datetime.timezone.utc)
    >>> to_bson_datetime(datetime(2022, 2, 18, 1, 30))
    datetime.datetime(2022, 2, 18, 1, 30, tzinfo=datetime.timezone.utc)
    >>> to_bson_datetime(None) is None
    True
    """
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


#: values copied as they are (checked by exact type: the common case, first)
_SCALARS = frozenset({str, int, float, bool, type(None), datetime})
_MISSING = object()


def _plain(value: Any) -> Any:
    """A copy made of dicts, lists and scalars (``Image`` objects become dicts).

    >>> from newscrawl.items import Image
    >>> _plain({"images": [Image("a.jpg")], "urls": ("u1", "u2"), "n": 1})
    {'images': [{'src': 'a.jpg', 'caption': None}], 'urls': ['u1', 'u2'], 'n': 1}
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list:
        return [item if type(item) is str else _plain(item) for item in value]
    if kind is dict:
        return {str(k): _plain(v) for k, v in value.items()}
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return _plain(to_dict())
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_document(item: Any) -> Document:
    """The item's fields as a document: ``key`` becomes ``_id``,
    ``published_at`` an aware UTC datetime; store fields are left out. The
    item is anything ``ItemAdapter`` takes (or an ``ItemAdapter``).

    >>> doc = to_document({"key": "finews:NW1", "title": "T", "urls": ("u1",),
    ...                    "published_at": datetime(2022, 2, 18, 1, 30), "version": 9})
    >>> doc["_id"], doc["urls"], doc["published_at"].isoformat(), "version" in doc
    ('finews:NW1', ['u1'], '2022-02-18T01:30:00+00:00', False)
    >>> to_document({"title": "no key"})
    Traceback (most recent call last):
    ...
    ValueError: article has no key (url None)
    """
    values = _fields(item)
    key = values.get("key")
    if not isinstance(key, str) or not key:
        raise ValueError(f"article has no key (url {values.get('url')!r})")
    doc: Document = {"_id": key}
    for name, value in values.items():
        if name in _NOT_COPIED:
            continue
        doc[name] = _plain(value)
    if "published_at" in doc:
        doc["published_at"] = to_bson_datetime(doc["published_at"])
    return doc


_NOT_COPIED = frozenset({"key", "_id", *STORE_FIELDS})
_STORE_FIELD_SET = frozenset(STORE_FIELDS)


def _fields(item: Any) -> Mapping[str, Any]:
    """The item's fields by name. A dataclass item (an ``Article``), bare or
    behind an ``ItemAdapter``, is read directly: the same fields as through
    the adapter, without its per-field lookups (which were a fifth of the
    store's time on the reactor thread).

    >>> from newscrawl.items import Article
    >>> item = Article(key="k", title="T")
    >>> _fields(item) == _fields(ItemAdapter(item)) == dict(ItemAdapter(item).items())
    True
    """
    inner = item.item if isinstance(item, ItemAdapter) else item
    if is_dataclass(inner) and not isinstance(inner, type):
        pairs = ((name, getattr(inner, name, _MISSING)) for name in _field_names(type(inner)))
        return {name: value for name, value in pairs if value is not _MISSING}
    if isinstance(item, Mapping):
        return item
    return ItemAdapter(item)


@lru_cache(maxsize=64)
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        stamp = to_bson_datetime(value)
        assert stamp is not None
        return stamp.isoformat(timespec="milliseconds")
    raise TypeError(f"cannot hash {type(value).__name__}")


def content_hash(doc: Mapping[str, Any]) -> str:
    """sha1 (hex) of the content fields; the same content gives the same hash
    whatever else differs (URLs, categories, tags, store fields).

    >>> a = {"title": "T", "body": "B", "urls": ["u1"], "version": 1}
    >>> b = {"title": "T", "body": "B", "urls": ["u2"], "tags": ["x"]}
    >>> content_hash(a) == content_hash(b)
    True
    >>> content_hash(a) == content_hash({**a, "body": "B2"})
    False
    >>> len(content_hash({}))
    40
    >>> doc = {"title": "标题", "published_at": datetime(2022, 2, 18, 1, 30, 0, 123456),
    ...        "images": [{"src": "a.jpg", "caption": None}], "body": "正文。"}
    >>> old_way = json.dumps({name: doc.get(name) for name in CONTENT_FIELDS}, sort_keys=True,
    ...                      ensure_ascii=False, separators=(",", ":"), default=_canonical)
    >>> content_hash(doc) == hashlib.sha1(old_way.encode("utf-8")).hexdigest()
    True
    """
    content = {name: doc.get(name) for name in CONTENT_FIELDS}
    return hashlib.sha1(_HASH_JSON.encode(content).encode("utf-8")).hexdigest()


#: the JSON that :func:`content_hash` hashes: what ``json.dumps`` gives with
#: these options (stored hashes depend on it), without an encoder per call
_HASH_JSON = json.JSONEncoder(
    sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_canonical
)


def union(first: Iterable[Any], second: Iterable[Any]) -> list[Any]:
    """Items of both, first-seen order, no repeats.

    >>> union(["a", "b"], ["b", "c", "a", "d"])
    ['a', 'b', 'c', 'd']
    """
    return list(dict.fromkeys([*first, *second]))


def item_fields(doc: Mapping[str, Any]) -> Document:
    """The document without its store fields.

    >>> item_fields({"_id": "k", "title": "T", "version": 3, "last_run_id": "r"})
    {'_id': 'k', 'title': 'T'}
    """
    return {name: value for name, value in doc.items() if name not in _STORE_FIELD_SET}


def combine(kept: Mapping[str, Any], other: Mapping[str, Any]) -> Document:
    """Two sightings of one article in one run (through another URL or
    category): the richer content (longer body; ``kept`` on a tie) with the
    union of URLs, categories and tags, and the :func:`first_url` of both.
    Store fields are dropped.

    >>> a = {"_id": "k", "body": "short", "urls": ["u1"], "categories": ["c1"], "tags": []}
    >>> b = {"_id": "k", "body": "longer body", "urls": ["u2", "u1"], "categories": ["c1"]}
    >>> combine(a, b)
    {'_id': 'k', 'body': 'longer body', 'urls': ['u1', 'u2'], 'categories': ['c1'], 'tags': []}
    >>> combine(b, a)["body"]
    'longer body'
    """
    richer = other if len(other.get("body") or "") > len(kept.get("body") or "") else kept
    out = item_fields(richer)
    for name in UNION_FIELDS:
        out[name] = union(kept.get(name) or [], other.get(name) or [])
    url = first_url(kept, other)
    if url is not None:
        out["url"] = url
    return out


def first_url(*docs: Mapping[str, Any]) -> str | None:
    """The canonical URL of an article reached at several post URLs (one per
    category): the one that sorts first, so it does not depend on crawl order.

    >>> first_url({"url": "https://h/emnews/1.html"}, {"url": "https://h/a/1.html"}, {})
    'https://h/a/1.html'
    """
    urls = [doc["url"] for doc in docs if doc.get("url")]
    return min(urls) if urls else None


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def merge(
    existing: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    run_id: str,
    now: datetime,
    seen_at: datetime | None = None,
) -> tuple[Document, str, Document | None]:
    """The document to write for a new sighting ``new`` (from
    :func:`to_document`) of the stored ``existing`` (None: not stored yet),
    the outcome, and the previous version to archive (or None).

    ``now`` is the time of the write, ``seen_at`` (default ``now``) the time
    of the sighting: they differ when a sighting kept in the journal during
    an outage is written later.

    - not stored: ``inserted``, version 1;
    - stored by this same run: ``merged`` (unions; the richer content);
    - stored by an earlier run, same content: ``unchanged`` (only
      ``last_seen_at``, ``last_run_id`` and the unions change);
    - stored by an earlier run, other content: ``updated``, version + 1, and
      the previous document is returned for ``article_versions``;
    - stored from a sighting *later* than this one (a journaled sighting
      written after a newer run stored the article): ``unchanged``, only the
      unions; an old sighting never replaces newer content.

    ``first_seen_at`` never changes; ``last_seen_at`` never goes back;
    ``updated_at`` is ``now`` whenever what a reader sees changes (content,
    ``url``, ``urls``, ``categories``, ``tags``), so "updated since T" finds
    every change; ``url`` is the :func:`first_url` of the stored and the new
    one, whatever the crawl order.

    >>> t0, t1 = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    >>> doc, outcome, old = merge(None, {"_id": "k", "body": "B", "urls": ["u1"]}, "run1", t0)
    >>> outcome, doc["version"], doc["first_seen_at"] == doc["updated_at"] == t0, old
    ('inserted', 1, True, None)
    >>> doc2, outcome, old = merge(doc, {"_id": "k", "body": "B", "urls": ["u2"]}, "run2", t1)
    >>> outcome, doc2["version"], doc2["urls"], doc2["last_seen_at"] == doc2["updated_at"] == t1
    ('unchanged', 1, ['u1', 'u2'], True)
    >>> doc3, outcome, old = merge(doc2, {"_id": "k", "body": "B2", "urls": ["u1"]}, "run3", t1)
    >>> outcome, doc3["version"], doc3["body"], old["article_id"], old["version"], old["body"]
    ('updated', 2, 'B2', 'k', 1, 'B')
    >>> merge(doc3, {"_id": "k", "body": "B", "urls": ["u3"]}, "run3", t1)[1]
    'merged'
    >>> stale, outcome, _ = merge(doc3, {"_id": "k", "body": "old"}, "run0", t1, seen_at=t0)
    >>> outcome, stale["body"], stale["last_seen_at"] == t1, stale["last_run_id"]
    ('unchanged', 'B2', True, 'run3')
    """
    now_ms = to_bson_datetime(now)
    seen_ms = to_bson_datetime(seen_at) if seen_at is not None else now_ms
    assert now_ms is not None and seen_ms is not None
    if existing is None:
        doc = item_fields(new)
        for name in UNION_FIELDS:
            if name in doc:
                doc[name] = union(doc[name] or [], [])
        doc.update(
            version=1,
            content_hash=content_hash(doc),
            first_seen_at=seen_ms,
            last_seen_at=seen_ms,
            updated_at=now_ms,
            last_run_id=run_id,
        )
        return doc, INSERTED, None

    old_hash = content_hash(existing)
    store = {name: existing.get(name) for name in STORE_FIELDS}
    store.update(content_hash=old_hash)
    stored_seen = to_bson_datetime(existing.get("last_seen_at"))
    other_run = existing.get("last_run_id") != run_id
    stale = other_run and stored_seen is not None and stored_seen > seen_ms
    if not stale:
        store.update(last_seen_at=_later(stored_seen, seen_ms), last_run_id=run_id)

    if existing.get("last_run_id") == run_id:
        doc = combine(existing, new)
        if content_hash(doc) != old_hash:
            store.update(content_hash=content_hash(doc))
        if _seen_differently(existing, doc) or content_hash(doc) != old_hash:
            store.update(updated_at=now_ms)
        return {**doc, **store}, MERGED, None

    unions: dict[str, Any] = {
        name: union(existing.get(name) or [], new.get(name) or []) for name in UNION_FIELDS
    }
    url = first_url(existing, new)
    if url is not None:
        unions["url"] = url
    if stale or content_hash(new) == old_hash:
        doc = {**item_fields(existing), **unions}
        if _seen_differently(existing, doc):
            store.update(updated_at=now_ms)
        return {**doc, **store}, UNCHANGED, None

    previous: Document = {name: value for name, value in existing.items() if name != "_id"}
    previous.update(article_id=existing["_id"], version=existing.get("version"), archived_at=now_ms)
    version = int(existing.get("version") or 0) + 1
    store.update(version=version, content_hash=content_hash(new), updated_at=now_ms)
    return {**item_fields(new), **unions, **store}, UPDATED, previous


def _seen_differently(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """True when where the article was seen (``url`` and the unions) changed.

    >>> _seen_differently({"urls": ["a"], "url": "a"}, {"urls": ["a", "b"], "url": "a"})
    True
    >>> _seen_differently({"urls": ["a"]}, {"urls": ["a"], "tags": []})
    False
    """
    return any(
        (before.get(name) or None) != (after.get(name) or None) for name in (*UNION_FIELDS, "url")
    )
