"""The duplicate index in MongoDB: LSH band keys per article, candidates by ``$in``.

Blocking pymongo code (plain calls that work on a real ``mongod`` and on the
embedded server), meant to run off the reactor thread, one batch at a time.

Two collections, one document per indexed article in each:

- ``dedup_bands`` ``{_id: <article key>, bands: [<int64 LSH band key>, ...]}``
  with a multikey index on ``bands``: written once per text, never updated
  (rewriting a document re-writes all its multikey entries, which is slow);
- ``dedup_index`` ``{_id, scheme: <Scheme.id>, text_hash: <sha1 of the
  normalised body>, length, sig: <num_perm uint32, little-endian bytes>,
  published_at, root: <key of the earliest-published article of its
  cluster>, duplicate_of: <root, absent on the root itself>, match:
  "exact"|"near", indexed_at, pending: true (until its matches are linked)}``
  with an index on ``root``: the mutable part.

A batch is written first and searched second (:meth:`DuplicateIndex.process`),
so two processes indexing near copies at the same moment cannot both miss
each other: whichever searches last finds the other. Candidates sharing a
band (``bands: {$in: ...}``) are verified from their stored signature: the
same ``text_hash`` is an exact duplicate, an estimated Jaccard similarity of
at least the threshold a near duplicate. Clusters then merge
(:mod:`newscrawl.dedup.clusters`) and ``duplicate_of`` is set on the
``articles`` documents (never a content change: no new version).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from bson import Binary, Int64
from pymongo import ASCENDING, IndexModel, ReplaceOne, UpdateMany, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database

from newscrawl.dedup.clusters import Merge, Node, plan_merges
from newscrawl.dedup.minhash import Scheme, Signature, band_keys, estimated_jaccard, signature
from newscrawl.dedup.text import normalize_text, text_hash

logger = logging.getLogger(__name__)

INDEX_COLLECTION = "dedup_index"
BANDS_COLLECTION = "dedup_bands"
ARTICLES = "articles"
EXACT = "exact"
NEAR = "near"
#: articles per candidate query (their band keys go into one ``$in``). One: a
#: server that checks ``$in`` against each candidate's band array pays
#: (values x bands) per candidate, so bigger queries cost more than they save
#: in round trips (SecantusDB: 3.7x less time per batch than with 4, see bench/)
DEFAULT_QUERY_ENTRIES = 1
#: at most this many rounds to follow roots re-pointed by another writer
_ROOT_ROUNDS = 5

INDEXES = [IndexModel([("root", ASCENDING)], name="root_1")]
BAND_INDEXES = [IndexModel([("bands", ASCENDING)], name="bands_1")]

Document = dict[str, Any]


@dataclass(frozen=True)
class Entry:
    """One article ready for the index: its normalised body's hash, MinHash
    signature and band keys."""

    key: str
    published_at: datetime | None
    text_hash: str
    length: int
    sig: Signature
    bands: tuple[int, ...]


def make_entry(
    key: str, body: str, published_at: datetime | None, scheme: Scheme, min_chars: int
) -> Entry | None:
    """The index entry of an article, or None when its normalised body is
    shorter than ``min_chars`` (a one-line flash is too little evidence:
    different stories share such lines).

    >>> from newscrawl.dedup.minhash import make_scheme
    >>> body = "今年以来，全区累计推动落地项目12个。" * 3
    >>> entry = make_entry("finews:NW1", body, None, make_scheme(), 20)
    >>> entry.length, len(entry.sig), len(entry.bands)
    (51, 128, 30)
    >>> make_entry("finews:NW2", "央视新闻快讯。", None, make_scheme(), 20) is None
    True
    """
    text = normalize_text(body)
    if len(text) < max(1, min_chars):
        return None
    sig = signature(text, scheme)
    return Entry(key, published_at, text_hash(text), len(text), sig, tuple(band_keys(sig, scheme)))


@dataclass
class LinkResult:
    """What one batch did."""

    #: entries written (new, or their text changed since indexed)
    indexed: int = 0
    #: entries already indexed with the same text (nothing to do)
    unchanged: int = 0
    #: batch articles with an identical normalised body under another key
    exact: int = 0
    #: batch articles with a near duplicate (and no exact one)
    near: int = 0
    #: candidate documents compared (shared at least one band)
    candidates: int = 0
    merges: list[Merge] = field(default_factory=list)
    #: ``articles`` documents whose ``duplicate_of`` was set, changed or removed
    articles_changed: int = 0


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + max(1, size)]


def _sig_bytes(sig: Signature) -> Binary:
    return Binary(np.asarray(sig, dtype="<u4").tobytes())


def _sig_of(value: bytes) -> Signature:
    return np.frombuffer(value, dtype="<u4").astype(np.uint32)


class DuplicateIndex:
    """Exact and near duplicates of articles, kept in ``dedup_index``; links
    them in ``articles`` with ``duplicate_of``."""

    def __init__(
        self,
        db: Database[Any],
        scheme: Scheme,
        *,
        query_entries: int = DEFAULT_QUERY_ENTRIES,
    ) -> None:
        self.index: Collection[Document] = db[INDEX_COLLECTION]
        self.bands: Collection[Document] = db[BANDS_COLLECTION]
        self.articles: Collection[Document] = db[ARTICLES]
        self.scheme = scheme
        self.query_entries = max(1, query_entries)

    def ensure(self) -> None:
        """Create the collections' indexes (safe to repeat, from several processes)."""
        self.index.create_indexes(INDEXES)
        self.bands.create_indexes(BAND_INDEXES)

    # -- one batch ----------------------------------------------------------

    def process(self, entries: Iterable[Entry]) -> LinkResult:
        """Index ``entries`` and link them with their duplicates."""
        result = LinkResult()
        todo = self.add(entries, result)
        if todo:
            edges = self.match(todo, result)
            self.link(todo, edges, result)
        return result

    def add(self, entries: Iterable[Entry], result: LinkResult) -> list[Entry]:
        """Write the entries that are new or changed (marked ``pending``) and
        return them; an entry indexed before with the same text is left alone."""
        batch = {entry.key: entry for entry in entries}
        if not batch:
            return []
        stored = {
            doc["_id"]: doc
            for doc in self.index.find(
                {"_id": {"$in": list(batch)}}, {"text_hash": 1, "scheme": 1, "pending": 1}
            )
        }
        todo = []
        for key, entry in batch.items():
            old = stored.get(key)
            if (
                old is not None
                and old.get("text_hash") == entry.text_hash
                and old.get("scheme") == self.scheme.id
                and not old.get("pending")
            ):
                result.unchanged += 1
            else:
                todo.append(entry)
        if not todo:
            return []
        now = datetime.now(tz=UTC)
        ops = [
            UpdateOne(
                {"_id": entry.key},
                {
                    "$set": {
                        "scheme": self.scheme.id,
                        "text_hash": entry.text_hash,
                        "length": entry.length,
                        "sig": _sig_bytes(entry.sig),
                        "published_at": entry.published_at,
                        "indexed_at": now,
                        "pending": True,
                    },
                    "$setOnInsert": {"root": entry.key},
                },
                upsert=True,
            )
            for entry in todo
        ]
        self.index.bulk_write(ops, ordered=False)
        bands = [
            ReplaceOne(
                {"_id": entry.key}, {"bands": [Int64(band) for band in entry.bands]}, upsert=True
            )
            for entry in todo
        ]
        self.bands.bulk_write(bands, ordered=False)
        result.indexed += len(todo)
        return todo

    def match(self, todo: Sequence[Entry], result: LinkResult) -> dict[tuple[str, str], str]:
        """Verified duplicate pairs of the ``todo`` entries among everything
        indexed (these entries included): ``{(key, other): "exact"|"near"}``."""
        pairs: set[tuple[str, str]] = set()
        for chunk in _chunks(todo, self.query_entries):
            keys = {entry.key for entry in chunk}
            wanted = list(dict.fromkeys(Int64(band) for entry in chunk for band in entry.bands))
            # only the bands in the query, so that it runs on the bands index (an
            # "_id $nin" next to it made SecantusDB scan the whole collection); the
            # chunk's own entries, which match every band, are skipped here
            for doc in self.bands.find({"bands": {"$in": wanted}}):
                if doc["_id"] in keys:
                    continue
                shared = {int(band) for band in doc.get("bands") or ()}
                for entry in chunk:
                    if shared.intersection(entry.bands):
                        pairs.add((entry.key, str(doc["_id"])))
            # pairs inside the chunk (the query leaves the chunk's own keys out)
            for i, entry in enumerate(chunk):
                for other in chunk[i + 1 :]:
                    if set(entry.bands).intersection(other.bands):
                        pairs.add((entry.key, other.key))
        result.candidates += len(pairs)
        if not pairs:
            return {}
        others = sorted({other for _key, other in pairs})
        stored = {
            doc["_id"]: doc
            for doc in self.index.find(
                {"_id": {"$in": others}}, {"sig": 1, "text_hash": 1, "scheme": 1}
            )
        }
        by_key = {entry.key: entry for entry in todo}
        edges: dict[tuple[str, str], str] = {}
        for key, other in sorted(pairs):
            edge = (min(key, other), max(key, other))
            if edge in edges:
                continue
            kind = self._verify(by_key[key], stored.get(other))
            if kind is not None:
                edges[edge] = kind
        return edges

    def _verify(self, entry: Entry, doc: Mapping[str, Any] | None) -> str | None:
        """``exact``, ``near`` or None (not a duplicate, or indexed otherwise)."""
        if doc is None or doc.get("scheme") != self.scheme.id:
            return None
        if doc.get("text_hash") == entry.text_hash:
            return EXACT
        sig = _sig_of(bytes(doc["sig"]))
        if (
            len(sig) == len(entry.sig)
            and estimated_jaccard(entry.sig, sig) >= self.scheme.threshold
        ):
            return NEAR
        return None

    def link(
        self, todo: Sequence[Entry], edges: Mapping[tuple[str, str], str], result: LinkResult
    ) -> None:
        """Merge the clusters ``edges`` join, point every member at the
        earliest-published article, and clear the entries' ``pending`` mark."""
        kinds: dict[str, str] = {}
        for (a, b), kind in edges.items():
            for key in (a, b):
                if kinds.get(key) != EXACT:
                    kinds[key] = kind
        for entry in todo:
            found = kinds.get(entry.key)
            if found == EXACT:
                result.exact += 1
            elif found == NEAR:
                result.near += 1
        merges = self._merges(edges) if edges else []
        ops: list[UpdateOne | UpdateMany] = []
        for merge in merges:
            ops.append(
                UpdateMany(
                    {"root": {"$in": sorted(merge.old_roots)}},
                    {"$set": {"root": merge.root, "duplicate_of": merge.root}},
                )
            )
            ops.append(
                UpdateOne(
                    {"_id": merge.root},
                    {"$set": {"root": merge.root}, "$unset": {"duplicate_of": ""}},
                )
            )
        for entry in todo:
            found = kinds.get(entry.key)
            update: Document = {"$unset": {"pending": ""}}
            if found is not None:
                update["$set"] = {"match": found}
            ops.append(UpdateOne({"_id": entry.key}, update))
        self.index.bulk_write(ops, ordered=True)
        result.merges.extend(merges)
        if merges:
            roots = [merge.root for merge in merges]
            members = self.index.find({"root": {"$in": roots}}, {"root": 1})
            result.articles_changed += self._point_articles(
                {doc["_id"]: doc["root"] for doc in members}
            )

    def _merges(self, edges: Mapping[tuple[str, str], str]) -> list[Merge]:
        """Load the nodes the edges touch, and their roots (following roots
        another writer re-pointed meanwhile), then plan the merges."""
        nodes: dict[str, Node] = {}
        wanted = {key for pair in edges for key in pair}
        for _ in range(_ROOT_ROUNDS):
            missing = sorted(wanted - set(nodes))
            if not missing:
                break
            found = self.index.find({"_id": {"$in": missing}}, {"published_at": 1, "root": 1})
            for doc in found:
                key = doc["_id"]
                nodes[key] = Node(key, doc.get("published_at"), doc.get("root") or key)
            for key in missing:
                nodes.setdefault(key, Node(key, None, key))
            wanted = {node.root for node in nodes.values()} - set(nodes)
        return plan_merges(nodes, edges)

    # -- articles -------------------------------------------------------------

    def sync_articles(self, keys: Iterable[str]) -> int:
        """Make ``duplicate_of`` of these stored articles agree with the index
        (after the store rewrote them); returns the documents changed."""
        wanted = sorted(set(keys))
        if not wanted:
            return 0
        roots = {
            doc["_id"]: doc.get("root") or doc["_id"]
            for doc in self.index.find({"_id": {"$in": wanted}}, {"root": 1})
        }
        return self._point_articles(roots)

    def _point_articles(self, roots: Mapping[str, str]) -> int:
        """Set ``duplicate_of`` = root on every article whose root is another,
        remove it from roots; only documents that differ are written, and
        their ``updated_at`` moves (a reader sees the link; exports follow
        ``updated_at``), never their ``version``."""
        now = datetime.now(tz=UTC)
        groups: dict[str, list[str]] = {}
        own: list[str] = []
        for key, root in roots.items():
            if key == root:
                own.append(key)
            else:
                groups.setdefault(root, []).append(key)
        ops: list[UpdateMany] = [
            UpdateMany(
                {"_id": {"$in": sorted(keys)}, "duplicate_of": {"$ne": root}},
                {"$set": {"duplicate_of": root, "updated_at": now}},
            )
            for root, keys in sorted(groups.items())
        ]
        if own:
            ops.append(
                UpdateMany(
                    {"_id": {"$in": sorted(own)}, "duplicate_of": {"$exists": True}},
                    {"$unset": {"duplicate_of": ""}, "$set": {"updated_at": now}},
                )
            )
        if not ops:
            return 0
        return int(self.articles.bulk_write(ops, ordered=False).modified_count)
