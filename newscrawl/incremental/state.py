"""What one crawl knows about pages stored by earlier runs, and what it learns.

Loaded once at start (:func:`load_state`, blocking: call it off the reactor
thread) from two collections:

- ``articles``: every post URL of the articles published within
  ``horizon`` of the reference time, with ``published_at``, ``last_seen_at``
  and ``gone_at`` (an indexed range query on ``published_at``);
- ``page_state`` (owned here): one document per canonical page URL checked
  within ``horizon``: its validators (``etag``, ``last_modified``, the exact
  ``url`` they came from), ``checked_at``, ``status``, and for a post the
  ``article_id``, ``published_at`` and ``outcome`` (``stored``, or
  ``dropped:<Reason>``); for a category page, ``linked_at`` (when a link to
  it was last followed), so a page never checked through is swept later.

A stored article older than the horizon whose page is linked again is simply
fetched again (its store outcome is ``unchanged``): the site keeps posts three
days, so that is rare, and it keeps the load bounded however big ``articles``
grows.

The crawl's own discoveries go back through :class:`StateWriter` in batches:
post pages only once their article is stored (``articles_stored``), list
pages only once every new post they linked to is stored, so a crawl stopped
half-way, or a failed write, leaves them to be fetched again next run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from newscrawl.incremental.policy import (
    SKIP,
    Known,
    Validators,
    aware,
    decide_post,
    list_due,
)
from newscrawl.sites import finews

logger = logging.getLogger(__name__)

PAGE_STATE = "page_state"
ARTICLES = "articles"
#: page kinds whose links lead to new posts
LIST_KINDS = frozenset({finews.HOME, finews.FEED, finews.CATEGORY})
STORED = "stored"
DUPLICATE_KEY = 11000
PAGE_STATE_INDEXES = [
    IndexModel([("checked_at", ASCENDING)], name="checked_at_1"),
    IndexModel([("linked_at", ASCENDING)], name="linked_at_1"),
]

Document = dict[str, Any]


@dataclass(frozen=True)
class Config:
    """The incremental settings of one crawl (see :mod:`newscrawl.incremental`)."""

    window: timedelta = timedelta(hours=24)
    recheck_after: timedelta = timedelta(hours=1)
    list_recheck_after: timedelta = timedelta(hours=1)
    horizon: timedelta = timedelta(days=7)


def post_urls(urls: Iterable[str | None]) -> list[str]:
    """The canonical post-page URLs among ``urls`` (an article's ``url`` and
    ``urls``), in first-seen order.

    >>> post_urls(["http://finews.zning.me/a/2022/02/18/NW1.html?x=1", None,
    ...            "https://finews.withounder.com/a/2022/02/18/NW1.html",
    ...            "https://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW1"])
    ['https://finews.withounder.com/a/2022/02/18/NW1.html']
    """
    out: dict[str, None] = {}
    for url in urls:
        if not url:
            continue
        canon = finews.canonical_url(url)
        if finews.route(canon) == finews.POST:
            out[canon] = None
    return list(out)


@dataclass
class CrawlState:
    """The in-memory state of one crawl: what is known, what is in flight.

    ``reference_now`` is the site's clock (publication times are compared with
    it); ``wall_now`` ours (last checks are compared with it).
    """

    config: Config
    reference_now: datetime
    wall_now: datetime
    #: canonical post URL -> its stored article
    known: dict[str, Known] = field(default_factory=dict)
    #: canonical list URL -> last time it was checked (None: linked, never checked)
    list_checked: dict[str, datetime | None] = field(default_factory=dict)
    #: canonical URL -> validators of the stored version
    validators: dict[str, Validators] = field(default_factory=dict)
    #: canonical URL -> validators of the version fetched in this run, not yet committed
    fetched: dict[str, Validators] = field(default_factory=dict)
    #: list URL -> new post URLs it linked to that are not stored yet
    children: dict[str, set[str]] = field(default_factory=dict)
    #: post URL -> list URLs waiting for it
    parents: dict[str, set[str]] = field(default_factory=dict)
    #: article key -> its post URLs yielded in this run -> published_at
    item_urls: dict[str, dict[str, datetime | None]] = field(default_factory=dict)
    #: pages with a ``page_state`` document (loaded, or written by this run)
    pages: set[str] = field(default_factory=set)

    # -- decisions -----------------------------------------------------------

    def decide(self, url: str) -> str:
        """FETCH, RECHECK or SKIP for a link to the post page ``url`` (canonical)."""
        return decide_post(
            self.known.get(url),
            reference_now=self.reference_now,
            wall_now=self.wall_now,
            window=self.config.window,
            recheck_after=self.config.recheck_after,
        )

    def list_wanted(self, url: str, *, from_new_post: bool) -> bool:
        """Whether a link to the category page ``url`` is followed."""
        if from_new_post:
            return True
        return list_due(
            self.list_checked.get(url),
            wall_now=self.wall_now,
            recheck_after=self.config.list_recheck_after,
        )

    def fetch_url(self, url: str) -> str:
        """The URL to ask for the page ``url`` (canonical) by: the one its
        validators came from, so that they match."""
        validators = self.validators.get(url)
        return validators.url if validators is not None else url

    def recheck_candidates(self) -> list[str]:
        """Stored posts due for a re-check, newest first."""
        due = [url for url in self.known if self.decide(url) != SKIP]
        return sorted(due, key=lambda url: self.known[url].published_at or self.wall_now)[::-1]

    def stale_lists(self) -> list[str]:
        """Category pages met before whose last check is old enough, or that
        were linked but never checked through (a crawl stopped, a failure)."""
        return sorted(
            url
            for url, checked in self.list_checked.items()
            if finews.route(url) == finews.CATEGORY
            and list_due(
                checked, wall_now=self.wall_now, recheck_after=self.config.list_recheck_after
            )
        )

    # -- what this run learns -------------------------------------------------

    def list_parsed(self, url: str, new_posts: Iterable[str]) -> bool:
        """A list page was parsed; ``new_posts`` are the posts it made us fetch.
        True when nothing is outstanding (its validators can be committed now)."""
        waiting = {post for post in new_posts if post not in self.known}
        if not waiting:
            self.children.pop(url, None)
            return True
        self.children[url] = waiting
        for post in waiting:
            self.parents.setdefault(post, set()).add(url)
        return False

    def settle(self, url: str, known: Known) -> list[str]:
        """The post ``url`` is stored (or definitively dropped or gone): remember
        it, and return the list pages that waited only for it."""
        old = self.known.get(url)
        self.known[url] = (
            known
            if old is None
            else Known(
                article_id=known.article_id or old.article_id,
                published_at=known.published_at or old.published_at,
                checked_at=known.checked_at,
                gone=known.gone,
            )
        )
        return self.release(url)

    def release(self, url: str) -> list[str]:
        """The post ``url`` will not be stored (it answers 404) but is not
        remembered either (a 404 may pass): the list pages that waited only
        for it are done. A changed list page links it again."""
        ready = []
        for parent in self.parents.pop(url, set()):
            waiting = self.children.get(parent)
            if waiting is None:
                continue
            waiting.discard(url)
            if not waiting:
                del self.children[parent]
                ready.append(parent)
        return ready

    def add_item(self, key: str, urls: Iterable[str], published_at: datetime | None) -> None:
        """An article item left the spider with these post URLs."""
        entry = self.item_urls.setdefault(key, {})
        for url in urls:
            entry[url] = published_at

    def take_item(self, key: str, urls: Iterable[str] | None = None) -> dict[str, datetime | None]:
        """The post URLs of article ``key`` (all, or only ``urls``), forgotten."""
        if urls is None:
            return self.item_urls.pop(key, {})
        entry = self.item_urls.get(key, {})
        taken = {url: entry.pop(url) for url in list(urls) if url in entry}
        if not entry:
            self.item_urls.pop(key, None)
        return taken


# -- loading ---------------------------------------------------------------


def ensure_page_state(db: Database[Document]) -> None:
    """Create the ``page_state`` indexes (idempotent, several processes at once)."""
    db[PAGE_STATE].create_indexes(PAGE_STATE_INDEXES)


def load_state(
    db: Database[Document],
    config: Config,
    *,
    reference_now: datetime,
    wall_now: datetime,
) -> CrawlState:
    """Read what earlier runs stored (see the module doc). Blocking."""
    started = time.monotonic()
    state = CrawlState(config=config, reference_now=reference_now, wall_now=wall_now)
    projection = {"url": 1, "urls": 1, "published_at": 1, "last_seen_at": 1, "gone_at": 1}
    since = reference_now - config.horizon
    for doc in db[ARTICLES].find({"published_at": {"$gte": since}}, projection):
        known = Known(
            article_id=str(doc["_id"]),
            published_at=aware(doc.get("published_at")),
            checked_at=aware(doc.get("last_seen_at")),
            gone=doc.get("gone_at") is not None,
        )
        for url in post_urls([doc.get("url"), *(doc.get("urls") or [])]):
            _remember(state, url, known)
    articles = len(state.known)
    recent = wall_now - config.horizon
    query = {"$or": [{"checked_at": {"$gte": recent}}, {"linked_at": {"$gte": recent}}]}
    for doc in db[PAGE_STATE].find(query):
        _load_page(state, doc)
    logger.info(
        "Incremental state: %d stored post pages (%d from articles published since %s),"
        " %d list pages, %d validators, loaded in %.2fs",
        len(state.known),
        articles,
        since.isoformat(),
        len(state.list_checked),
        len(state.validators),
        time.monotonic() - started,
    )
    return state


def _remember(state: CrawlState, url: str, known: Known) -> None:
    old = state.known.get(url)
    state.known[url] = known if old is None else old.merged(known)


def _load_page(state: CrawlState, doc: Document) -> None:
    url = str(doc["_id"])
    state.pages.add(url)
    checked = aware(doc.get("checked_at"))
    validators = Validators(
        url=str(doc.get("url") or url),
        etag=doc.get("etag") or None,
        last_modified=doc.get("last_modified") or None,
    )
    if validators:
        state.validators[url] = validators
    kind = doc.get("kind")
    if kind in LIST_KINDS:
        state.list_checked[url] = checked
    elif kind == finews.POST and doc.get("outcome"):
        _remember(
            state,
            url,
            Known(
                article_id=doc.get("article_id"),
                published_at=aware(doc.get("published_at")),
                checked_at=checked,
                gone=doc.get("gone_at") is not None,
            ),
        )


# -- writing ---------------------------------------------------------------


def page_values(
    kind: str,
    now: datetime,
    *,
    validators: Validators | None = None,
    status: int | None = None,
    **fields: Any,
) -> Document:
    """The fields of one page's state that a check sets (validators only
    when given).

    >>> from datetime import UTC
    >>> sorted(page_values("home", datetime(2024, 1, 1, tzinfo=UTC), status=304))
    ['checked_at', 'kind', 'status']
    """
    values: Document = {"kind": kind, "checked_at": now, **fields}
    if status is not None:
        values["status"] = status
    if validators is not None:
        values.update(
            url=validators.url, etag=validators.etag, last_modified=validators.last_modified
        )
    return values


def linked_values(kind: str, now: datetime) -> Document:
    """The fields that remember a list page is linked (its check may never
    complete).

    >>> from datetime import UTC
    >>> linked_values("category", datetime(2024, 1, 1, tzinfo=UTC))
    {'kind': 'category', 'linked_at': datetime.datetime(2024, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)}
    """  # noqa: E501
    return {"kind": kind, "linked_at": now}


@dataclass(frozen=True)
class NewPage:
    """The state of a page that has no ``page_state`` document as far as this
    crawl knows (none was loaded, none written yet): inserted, which costs a
    server less than an upsert (no document to look for first). If one
    exists after all (older than the horizon, or written by another crawl
    meanwhile), the insert fails on ``_id`` and the same values are set on it
    (:meth:`as_update`): the result is the upsert's either way.

    >>> from datetime import UTC
    >>> op = NewPage.of("https://h/", {"kind": "home", "status": 200})
    >>> op.doc
    {'_id': 'https://h/', 'kind': 'home', 'status': 200}
    >>> op.as_update()._filter, op.as_update()._doc
    ({'_id': 'https://h/'}, {'$set': {'kind': 'home', 'status': 200}})
    """

    doc: Document

    @classmethod
    def of(cls, url: str, values: Document) -> NewPage:
        return cls({"_id": url, **values})

    def as_update(self) -> UpdateOne:
        values = {name: value for name, value in self.doc.items() if name != "_id"}
        return UpdateOne({"_id": self.doc["_id"]}, {"$set": values}, upsert=True)


#: one queued write: a collection and an update, or a page state to insert
StateOp = tuple[str, UpdateOne | NewPage]


@dataclass
class WriteResult:
    written: int = 0
    errors: list[str] = field(default_factory=list)


class StateWriter:
    """Applies batches of writes to ``page_state`` and ``articles`` (blocking;
    the crawl calls :meth:`write` in a worker thread, one batch at a time).

    Per collection, the :class:`NewPage` documents go first in one unordered
    ``insert_many`` (those that exist after all become updates), then the
    updates in one unordered ``bulk_write``: a page's insert is always queued
    before its updates, so they still apply in order.
    """

    def __init__(self, db: Database[Document]) -> None:
        self.db = db

    def write(self, ops: list[StateOp]) -> WriteResult:
        result = WriteResult()
        for collection, batch in _by_collection(ops):
            new = [op for op in batch if isinstance(op, NewPage)]
            updates = [op for op in batch if isinstance(op, UpdateOne)]
            if new:
                updates[:0] = self._insert(collection, new, result)
            if updates:
                self._update(collection, updates, result)
        return result

    def _insert(self, collection: str, new: list[NewPage], result: WriteResult) -> list[UpdateOne]:
        """Insert the new pages; returns the updates of those that exist."""
        try:
            self.db[collection].insert_many([op.doc for op in new], ordered=False)
        except BulkWriteError as exc:
            details = exc.details
            result.written += details.get("nInserted", 0)
            existing = []
            for error in details.get("writeErrors", []):
                if error.get("code") == DUPLICATE_KEY:
                    existing.append(new[error["index"]].as_update())
                elif len(result.errors) < 5:
                    result.errors.append(f"{collection}: {error.get('errmsg', error)}")
            return existing
        result.written += len(new)
        return []

    def _update(self, collection: str, updates: list[UpdateOne], result: WriteResult) -> None:
        try:
            done = self.db[collection].bulk_write(updates, ordered=False)
            result.written += done.upserted_count + done.matched_count
        except BulkWriteError as exc:
            details = exc.details
            result.written += details.get("nUpserted", 0) + details.get("nMatched", 0)
            for error in details.get("writeErrors", [])[:5]:
                result.errors.append(f"{collection}: {error.get('errmsg', error)}")


def _by_collection(ops: list[StateOp]) -> Iterator[tuple[str, list[UpdateOne | NewPage]]]:
    groups: dict[str, list[UpdateOne | NewPage]] = {}
    for collection, op in ops:
        groups.setdefault(collection, []).append(op)
    yield from groups.items()
