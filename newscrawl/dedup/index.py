"""The duplicate index: entries in MongoDB, the LSH band table in memory.

Blocking pymongo code (plain calls that work on a real ``mongod`` and on the
embedded server), meant to run off the reactor thread, one batch at a time.

MongoDB holds the index, shared by every crawler process and every run:

- ``dedup_index``, one document per indexed article, the one source of truth:
  ``{_id: <article key>, scheme: <Scheme.id>, text_hash: <sha1 of the
  normalised body>, length, sig: <num_perm uint32, little-endian bytes>,
  bands: <the top 32 bits of each LSH band key, uint32 little-endian bytes;
  not indexed>, sketch: <2 bits of each MinHash value, 4 to a byte>, seq:
  <int64, see below>, published_at, indexed_at, root: <key of the
  earliest-published article of its cluster>, duplicate_of: <root, absent
  on the root itself>, match: "exact"|"near"}``, with indexes on ``seq``
  and ``root``;
- ``dedup_writers``, one small document per process that writes entries:
  ``{_id: <writer number>, written: <its last seq written>, linked: <every
  seq of it up to this one is linked>, updated_at: <server time>, closed,
  started_at, host, pid, scheme}``, indexed on ``updated_at``.

``seq`` is ``writer << 32 | n``: the writer's number (random, claimed with an
upsert at open) and its n-th entry. It names an entry version (an entry
re-indexed gets a new one) and orders each writer's entries.

Each process keeps the band table (:class:`~newscrawl.dedup.bandtable.BandTable`:
band key prefixes -> seq and sketch, about 170 bytes per article) in
memory. It is loaded at open from ``dedup_index`` (``seq``, ``bands`` and
``sketch`` of every entry of the scheme, streamed), and brought up to date
before each batch's search with what other writers added: the writer
documents changed since the last look (``updated_at``, server time, with a
margin), then, for each writer whose ``written`` moved, its entries in
``(known, written]`` (a range on ``seq``). A writer writes its entries
before it moves ``written``, so a range read is complete, whatever the
clocks.

A batch is written first and searched second (:meth:`DuplicateIndex.process`):
entries (bulk insert), then the writer's own ``written``, then the look at
the others. Two processes indexing near copies at the same moment cannot
both miss each other: whichever moves ``written`` last sees the other's.
Candidates sharing a band prefix whose sketch could reach the threshold
are verified from their stored signatures (fetched by ``seq``; pairs inside
the batch from memory): the same ``text_hash`` is an exact duplicate, an
estimated Jaccard similarity of at least the threshold a near duplicate.
Clusters then merge (:mod:`newscrawl.dedup.clusters`) and ``duplicate_of``
is set on the ``articles`` documents (never a content change: no new
version).

Per batch in a single-process crawl: one read of the batch's keys (already
indexed with the same text?), one bulk insert, one update and one read of
``dedup_writers``; a signature read when there are likely matches and
writes when there are links.

An entry is linked when its batch's search and links are done; the writer's
``linked`` says so durably. An entry indexed before with the same text is
skipped, unless it is not linked yet (its writer stopped or failed between
the two): then it is indexed again.

Migration from the former layout (``dedup_bands``, a multikey index of 30
band keys per article, queried with ``$in``): :meth:`DuplicateIndex.ensure`
drops ``dedup_bands``; entries without ``seq``, ``bands`` or ``sketch`` get
them at the next open (recomputed from ``sig``: bands and sketch are a
function of the signature and the scheme).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from bson import Binary, Int64
from pymongo import ASCENDING, IndexModel, InsertOne, ReturnDocument, UpdateMany, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from newscrawl.dedup.bandtable import BandTable, prefixes
from newscrawl.dedup.clusters import Merge, Node, plan_merges
from newscrawl.dedup.minhash import (
    Scheme,
    Signature,
    band_keys,
    equal_needed,
    estimated_jaccard,
    signature,
    sketch,
    sketch_bytes,
    sketch_equal,
)
from newscrawl.dedup.text import normalize_text, text_hash

logger = logging.getLogger(__name__)

INDEX_COLLECTION = "dedup_index"
WRITERS_COLLECTION = "dedup_writers"
#: the former multikey band collection, dropped by :meth:`DuplicateIndex.ensure`
OLD_BANDS_COLLECTION = "dedup_bands"
ARTICLES = "articles"
EXACT = "exact"
NEAR = "near"
#: writer documents changed this long before the last look are looked at
#: again (server time: covers a write applied while the look ran)
DEFAULT_MARGIN_SECONDS = 60.0
#: entries per band-table run while loading
_LOAD_CHUNK = 65_536
#: documents per batch of the loading cursor, and entries per upgrade round
_CURSOR_BATCH = 10_000
_UPGRADE_CHUNK = 1_000
#: at most this many rounds to follow roots re-pointed by another writer
_ROOT_ROUNDS = 5
_SEQ_SHIFT = 32
#: what a band table snapshot file holds (another value: not read)
SNAPSHOT_FORMAT = 1
_DUPLICATE_KEY = 11000

INDEXES = [
    IndexModel([("root", ASCENDING)], name="root_1"),
    IndexModel([("seq", ASCENDING)], name="seq_1"),
]
WRITER_INDEXES = [IndexModel([("updated_at", ASCENDING)], name="updated_at_1")]

Document = dict[str, Any]


def writer_of(seq: int) -> int:
    """The writer number in a ``seq``.

    >>> writer_of(first_seq(12345) + 7)
    12345
    """
    return seq >> _SEQ_SHIFT


def first_seq(writer: int) -> int:
    """The ``seq`` before a writer's first entry (its ``written`` at start).

    >>> first_seq(1), first_seq(2**31 - 1) < 2**63
    (4294967296, True)
    """
    return writer << _SEQ_SHIFT


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


def make_entries(
    articles: Sequence[tuple[str, str, datetime | None]], scheme: Scheme, min_chars: int
) -> tuple[list[Entry], int]:
    """The entries of ``(key, body, published_at)`` articles, and how many
    were too short to index (see :func:`make_entry`). Pure: the dedup
    pipeline runs it in a parse process (:mod:`newscrawl.extract.pool`).

    >>> from newscrawl.dedup.minhash import make_scheme
    >>> entries, short = make_entries(
    ...     [("finews:NW1", "今年以来，全区累计推动落地项目12个。" * 3, None),
    ...      ("finews:NW2", "央视新闻快讯。", None)], make_scheme(), 20)
    >>> [entry.key for entry in entries], short
    (['finews:NW1'], 1)
    """
    entries: list[Entry] = []
    short = 0
    for key, body, published_at in articles:
        entry = make_entry(key, body, published_at, scheme, min_chars)
        if entry is None:
            short += 1
        else:
            entries.append(entry)
    return entries, short


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
    #: (article, indexed entry) pairs sharing a band prefix
    candidates: int = 0
    #: signatures of candidates read to verify them (the others' sketches
    #: ruled them out)
    fetched: int = 0
    #: entries of other writers added to the band table
    read: int = 0
    merges: list[Merge] = field(default_factory=list)
    #: ``articles`` documents whose ``duplicate_of`` was set, changed or removed
    articles_changed: int = 0


@dataclass
class LoadResult:
    """What :meth:`DuplicateIndex.open` found."""

    #: entries in the band table
    entries: int = 0
    #: of which from the snapshot of a former process
    restored: int = 0
    #: entries of the former layout given ``seq`` and ``bands``
    upgraded: int = 0
    seconds: float = 0.0


def _sig_bytes(sig: Signature) -> Binary:
    return Binary(np.asarray(sig, dtype="<u4").tobytes())


def _sig_of(value: bytes) -> Signature:
    return np.frombuffer(value, dtype="<u4").astype(np.uint32)


def band_bytes(bands: Sequence[int]) -> bytes:
    """What ``dedup_index.bands`` holds: the band keys' top 32 bits, uint32
    little-endian.

    >>> band_bytes([-1, 2**32]).hex()
    'ffffffff01000000'
    """
    return prefixes(bands).astype("<u4").tobytes()


class DuplicateIndex:
    """Exact and near duplicates of articles, kept in ``dedup_index``; links
    them in ``articles`` with ``duplicate_of`` (see the module doc).

    Opened (writer claimed, band table loaded) by :meth:`open` or by the
    first batch; :meth:`close` marks the writer closed."""

    def __init__(
        self,
        db: Database[Any],
        scheme: Scheme,
        *,
        margin_seconds: float = DEFAULT_MARGIN_SECONDS,
        snapshot_dir: Path | None = None,
    ) -> None:
        self.db = db
        #: where :meth:`close` saves the band table and :meth:`open` reads it
        self.snapshot_dir = snapshot_dir
        self.index: Collection[Document] = db[INDEX_COLLECTION]
        self.writers: Collection[Document] = db[WRITERS_COLLECTION]
        self.articles: Collection[Document] = db[ARTICLES]
        self.scheme = scheme
        self.margin = timedelta(seconds=max(0.0, margin_seconds))
        self._needed = equal_needed(scheme)
        self._unopened()

    def _unopened(self) -> None:
        """The state before :meth:`open` (and after an open that failed)."""
        self.table = BandTable(self.scheme.bands, sketch_bytes(self.scheme.num_perm))
        #: this process's writer number (None until opened)
        self.writer: int | None = None
        self._count = 0
        self._written = 0
        #: keys written by this writer and not linked yet -> their seq
        self._unlinked: dict[str, int] = {}
        #: other writers: seq up to which their entries are in the table
        self._known: dict[int, int] = {}
        #: other writers: their ``linked``
        self._linked: dict[int, int] = {}
        #: entries loaded beyond their writer's ``written`` at open
        self._ahead: set[int] = set()
        #: server time of this writer's last ``dedup_writers`` update
        self._since: datetime | None = None
        self._file: Path | None = None

    def ensure(self) -> None:
        """Create the collections' indexes and drop the former band
        collection (safe to repeat, from several processes)."""
        self.index.create_indexes(INDEXES)
        self.writers.create_indexes(WRITER_INDEXES)
        if OLD_BANDS_COLLECTION in self.db.list_collection_names():
            logger.info(
                "Dropping %s.%s: the band table now lives in each crawler's memory, loaded from %s",
                self.db.name,
                OLD_BANDS_COLLECTION,
                INDEX_COLLECTION,
            )
            self.db.drop_collection(OLD_BANDS_COLLECTION)

    # -- open and close ----------------------------------------------------------

    def open(self) -> LoadResult:
        """Claim a writer number and load the band table (once): from the
        snapshot a former process left in :attr:`snapshot_dir` and what
        was written since, else every entry."""
        result = LoadResult()
        if self.writer is not None:
            return result
        started = time.monotonic()
        self._claim()
        try:
            for doc in self.writers.find({}, {"written": 1, "linked": 1}):
                number = int(doc["_id"])
                if number != self.writer:
                    self._known[number] = int(doc.get("written") or first_seq(number))
                    self._linked[number] = int(doc.get("linked") or first_seq(number))
            self._file = self._snapshot_file()
            if not self._restore(result):
                self._load(result)
        except BaseException:
            # half loaded: the next open starts again (under a new writer number)
            self._unopened()
            raise
        result.seconds = time.monotonic() - started
        return result

    def close(self) -> None:
        """Record what this writer wrote and linked, and that it is done;
        save the band table to :attr:`snapshot_dir` (for the next run)."""
        if self.writer is None:
            return
        self._mark(closed=True)
        if self._file is not None:
            try:
                self._save(self._file)
            except OSError as exc:
                logger.warning("Could not save the dedup band table to %s: %s", self._file, exc)

    # -- the snapshot of the band table ---------------------------------------------

    def _snapshot_file(self) -> Path | None:
        """The snapshot of this scheme's table for this very collection
        (named by its UUID: a collection dropped and made again is another)."""
        if self.snapshot_dir is None:
            return None
        infos = list(self.db.list_collections(filter={"name": INDEX_COLLECTION}))
        uuid = infos[0].get("info", {}).get("uuid") if infos else None
        if not isinstance(uuid, bytes) or not uuid:
            return None
        return self.snapshot_dir / f"{bytes(uuid).hex()}-{self.scheme.id}.npz"

    def _save(self, path: Path) -> None:
        """Write the table, and up to which seq of each writer it holds."""
        assert self.writer is not None
        known = {**self._known, self.writer: self._written}
        header = {"format": SNAPSHOT_FORMAT, "scheme": self.scheme.id, "path": path.name}
        arrays: dict[str, Any] = {
            "header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
            "known_writers": np.array(sorted(known), dtype=np.int64),
            "known_seqs": np.array([known[w] for w in sorted(known)], dtype=np.int64),
            "ahead": np.array(sorted(self._ahead), dtype=np.int64),
            **self.table.arrays(),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        with partial.open("wb") as out:
            np.savez(out, **arrays)
        partial.replace(path)

    def _restore(self, result: LoadResult) -> bool:
        """The table from the snapshot, then every writer's entries written
        since it (False: no usable snapshot)."""
        path = self._file
        if path is None or not path.exists():
            return False
        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(bytes(data["header"]).decode("utf-8"))
                wanted = {"format": SNAPSHOT_FORMAT, "scheme": self.scheme.id, "path": path.name}
                if header != wanted:
                    raise ValueError(f"made for {header}")
                writers = data["known_writers"].tolist()
                known = dict(zip(writers, data["known_seqs"].tolist(), strict=True))
                ahead = set(data["ahead"].tolist())
                table = BandTable.from_arrays(
                    self.scheme.bands, self.table.sketch_bytes, {k: data[k] for k in data.files}
                )
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("Dedup band table snapshot %s not used: %s", path, exc)
            return False
        self.table, self._ahead = table, ahead
        result.restored = len(table)
        for number, written in self._known.items():
            start = known.get(number, first_seq(number))
            if written > start:
                self._read_range(start, written)
        result.entries = len(self.table)
        return True

    def _claim(self) -> None:
        token = secrets.token_hex(8)
        for _ in range(16):
            number = secrets.randbelow(2**31 - 1) + 1
            try:
                doc = self._claim_one(number, token)
            except DuplicateKeyError:
                continue
            if doc is not None and doc.get("token") == token:
                self.writer = number
                self._written = first_seq(number)
                self._since = doc["updated_at"]
                return
        raise RuntimeError("could not claim a dedup writer number")

    def _claim_one(self, number: int, token: str) -> Document | None:
        return self.writers.find_one_and_update(
            {"_id": Int64(number)},
            {
                "$setOnInsert": {
                    "token": token,
                    "written": Int64(first_seq(number)),
                    "linked": Int64(first_seq(number)),
                    "closed": False,
                    "scheme": self.scheme.id,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "started_at": datetime.now(tz=UTC),
                },
                "$currentDate": {"updated_at": True},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )

    def _load(self, result: LoadResult) -> None:
        """Every entry of the scheme into the band table; entries of the
        former layout get ``seq``, ``bands`` and ``sketch``."""
        rows: list[tuple[int, bytes, bytes]] = []
        old: list[str] = []
        cursor = self.index.find(
            {"scheme": self.scheme.id},
            {"seq": 1, "bands": 1, "sketch": 1},
            batch_size=_CURSOR_BATCH,
        )
        for doc in cursor:
            row = self._row(doc)
            if row is None:
                old.append(doc["_id"])
                continue
            rows.append(row)
            number = writer_of(row[0])
            if row[0] > self._known.get(number, first_seq(number)):
                self._ahead.add(row[0])
            if len(rows) >= _LOAD_CHUNK:
                self._add(rows)
                result.entries += len(rows)
                rows = []
        if rows:
            self._add(rows)
            result.entries += len(rows)
        if old:
            result.upgraded = self._upgrade(old)
            result.entries += result.upgraded

    def _row(self, doc: Mapping[str, Any]) -> tuple[int, bytes, bytes] | None:
        """(seq, bands, sketch) of an entry document, None if it lacks them."""
        seq, bands, sketched = doc.get("seq"), doc.get("bands"), doc.get("sketch")
        if seq is None or bands is None or sketched is None:
            return None
        if len(bands) != 4 * self.scheme.bands or len(sketched) != self.table.sketch_bytes:
            return None
        return int(seq), bytes(bands), bytes(sketched)

    def _add(self, rows: Sequence[tuple[int, bytes, bytes]]) -> None:
        count = len(rows)
        bands = np.frombuffer(b"".join(row[1] for row in rows), dtype="<u4")
        sketches = np.frombuffer(b"".join(row[2] for row in rows), dtype=np.uint8)
        self.table.add(
            bands.reshape(count, self.scheme.bands),
            [row[0] for row in rows],
            sketches.reshape(count, self.table.sketch_bytes),
        )

    def _upgrade(self, keys: list[str]) -> int:
        """Give entries of the former layout a ``seq``, ``bands`` and ``sketch``."""
        logger.info(
            "Dedup index: %d entries of the former layout get their band keys (once)", len(keys)
        )
        done = 0
        for start in range(0, len(keys), _UPGRADE_CHUNK):
            wanted = keys[start : start + _UPGRADE_CHUNK]
            ops: list[UpdateOne] = []
            rows: list[tuple[int, bytes, bytes]] = []
            for doc in self.index.find({"_id": {"$in": wanted}}, {"sig": 1, "scheme": 1}):
                if doc.get("scheme") != self.scheme.id or not doc.get("sig"):
                    continue
                sig = _sig_of(bytes(doc["sig"]))
                if len(sig) != self.scheme.num_perm:
                    continue
                row = (
                    self._next_seq(),
                    band_bytes(band_keys(sig, self.scheme)),
                    sketch(sig).tobytes(),
                )
                fields = {"seq": Int64(row[0]), "bands": Binary(row[1]), "sketch": Binary(row[2])}
                ops.append(UpdateOne({"_id": doc["_id"]}, {"$set": fields}))
                rows.append(row)
            if ops:
                self.index.bulk_write(ops, ordered=False)
                self._add(rows)
                done += len(ops)
        if done:
            self._mark()
        return done

    def _next_seq(self) -> int:
        assert self.writer is not None
        self._count += 1
        seq = first_seq(self.writer) + self._count
        self._written = seq
        return seq

    def _linked_seq(self) -> int:
        """Every seq of this writer up to this one is linked."""
        if self._unlinked:
            return min(self._unlinked.values()) - 1
        return self._written

    def _mark(self, *, closed: bool = False) -> None:
        """Record this writer's ``written`` and ``linked``."""
        assert self.writer is not None
        fields: Document = {
            "written": Int64(self._written),
            "linked": Int64(self._linked_seq()),
        }
        if closed:
            fields["closed"] = True
        self.writers.update_one(
            {"_id": Int64(self.writer)},
            {"$set": fields, "$currentDate": {"updated_at": True}},
            upsert=True,
        )

    # -- one batch ------------------------------------------------------------

    def process(self, entries: Iterable[Entry], stored: Iterable[str] = ()) -> LinkResult:
        """Index ``entries`` and link them with their duplicates; also put
        back ``duplicate_of`` on the ``stored`` articles (which the store
        has just rewritten)."""
        result = LinkResult()
        self.open()
        batch = list(entries)
        stored_keys = set(stored)
        known = self._read({entry.key for entry in batch} | stored_keys)
        todo = self._write(batch, known, result)
        roots = {
            key: str(doc["root"])
            for key, doc in known.items()
            if key in stored_keys and doc.get("root") not in (None, key)
        }
        if todo or roots:
            edges = self.match(todo, result) if todo else {}
            self.link(todo, edges, result, roots)
        return result

    def add(self, entries: Iterable[Entry], result: LinkResult) -> list[Entry]:
        """Write the entries that are new, changed or not linked yet, and
        return them; an entry indexed and linked before with the same text
        is left alone."""
        self.open()
        batch = list(entries)
        return self._write(batch, self._read({entry.key for entry in batch}), result)

    def _read(self, keys: set[str]) -> dict[str, Document]:
        if not keys:
            return {}
        projection = {"text_hash": 1, "scheme": 1, "seq": 1, "pending": 1, "root": 1}
        return {
            doc["_id"]: doc for doc in self.index.find({"_id": {"$in": sorted(keys)}}, projection)
        }

    def _done(self, doc: Mapping[str, Any]) -> bool:
        """Indexed under this scheme and linked (else: to index again)."""
        seq = doc.get("seq")
        if doc.get("pending") or doc.get("scheme") != self.scheme.id or seq is None:
            return False
        number = writer_of(int(seq))
        if number == self.writer:
            return int(seq) <= self._linked_seq()
        linked = self._linked.get(number)
        return linked is not None and int(seq) <= linked

    def _write(
        self, entries: Sequence[Entry], known: Mapping[str, Document], result: LinkResult
    ) -> list[Entry]:
        batch = {entry.key: entry for entry in entries}
        todo: list[Entry] = []
        for key, entry in batch.items():
            old = known.get(key)
            if old is not None and old.get("text_hash") == entry.text_hash and self._done(old):
                result.unchanged += 1
            else:
                todo.append(entry)
        if not todo:
            return []
        now = datetime.now(tz=UTC)
        rows = [
            (self._next_seq(), band_bytes(entry.bands), sketch(entry.sig).tobytes())
            for entry in todo
        ]
        ops: list[InsertOne[Document] | UpdateOne] = []
        updates: dict[int, UpdateOne] = {}
        for at, (entry, (seq, bands, sketched)) in enumerate(zip(todo, rows, strict=True)):
            fields: Document = {
                "scheme": self.scheme.id,
                "text_hash": entry.text_hash,
                "length": entry.length,
                "sig": _sig_bytes(entry.sig),
                "bands": Binary(bands),
                "sketch": Binary(sketched),
                "seq": Int64(seq),
                "published_at": entry.published_at,
                "indexed_at": now,
            }
            update = UpdateOne(
                {"_id": entry.key},
                {"$set": fields, "$unset": {"pending": ""}, "$setOnInsert": {"root": entry.key}},
                upsert=True,
            )
            updates[at] = update
            if entry.key in known:
                ops.append(update)
            else:
                ops.append(InsertOne({"_id": entry.key, **fields, "root": entry.key}))
        try:
            self.index.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            # another writer indexed the same key since it was read: update it
            errors = exc.details.get("writeErrors", [])
            if not errors or any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise
            self.index.bulk_write([updates[e["index"]] for e in errors], ordered=False)
        self._add(rows)
        for entry, row in zip(todo, rows, strict=True):
            self._unlinked[entry.key] = row[0]
        self._mark()
        result.indexed += len(todo)
        return todo

    def match(self, todo: Sequence[Entry], result: LinkResult) -> dict[tuple[str, str], str]:
        """Verified duplicate pairs of the ``todo`` entries among everything
        indexed (these entries included): ``{(key, other): "exact"|"near"}``."""
        self.open()
        self.refresh(result)
        if not todo:
            return {}
        query = np.stack([prefixes(entry.bands) for entry in todo])
        own = {self._unlinked.get(entry.key): entry for entry in todo}
        rows, seqs, sketches = self.table.lookup(query)
        ours = np.stack([sketch(entry.sig) for entry in todo])
        close = sketch_equal(sketches, ours[rows]) >= self._needed
        shared: set[tuple[str, int]] = set()
        pairs: set[tuple[str, int]] = set()
        for row, seq, keep in zip(rows.tolist(), seqs.tolist(), close.tolist(), strict=True):
            entry = todo[row]
            if own.get(seq) is entry:
                continue
            shared.add((entry.key, seq))
            if keep:
                pairs.add((entry.key, seq))
        result.candidates += len(shared)
        if not pairs:
            return {}
        fetch = sorted({seq for _key, seq in pairs if seq not in own})
        result.fetched += len(fetch)
        stored: dict[int, list[Document]] = {}
        if fetch:
            found = self.index.find(
                {"seq": {"$in": [Int64(seq) for seq in fetch]}},
                {"seq": 1, "sig": 1, "text_hash": 1, "scheme": 1},
            )
            for doc in found:
                stored.setdefault(int(doc["seq"]), []).append(doc)
        by_key = {entry.key: entry for entry in todo}
        edges: dict[tuple[str, str], str] = {}
        for key, seq in sorted(pairs):
            entry = by_key[key]
            mine = own.get(seq)
            if mine is not None:
                others: list[tuple[str, str | None]] = [
                    (mine.key, self._verify_pair(entry, mine.text_hash, mine.sig))
                ]
            else:
                others = [
                    (str(doc["_id"]), self._verify(entry, doc)) for doc in stored.get(seq, [])
                ]
            for other, kind in others:
                edge = (min(key, other), max(key, other))
                if other != key and kind is not None and edge not in edges:
                    edges[edge] = kind
        return edges

    def refresh(self, result: LinkResult | None = None) -> int:
        """Add to the band table what other writers wrote since the last
        look; returns the number of entries added."""
        self.open()
        assert self._since is not None
        since = self._since - self.margin
        changed = list(
            self.writers.find(
                {"updated_at": {"$gte": since}}, {"written": 1, "linked": 1, "updated_at": 1}
            )
        )
        added = 0
        for doc in changed:
            number = int(doc["_id"])
            if number == self.writer:
                self._since = max(self._since, doc["updated_at"])
                continue
            start = first_seq(number)
            self._linked[number] = max(self._linked.get(number, start), int(doc.get("linked") or 0))
            known = self._known.get(number, start)
            written = int(doc.get("written") or start)
            if written > known:
                added += self._read_range(known, written)
                self._known[number] = written
        if result is not None:
            result.read += added
        return added

    def _read_range(self, after: int, through: int) -> int:
        """One writer's entries with ``after < seq <= through`` into the table."""
        rows: list[tuple[int, bytes, bytes]] = []
        found = self.index.find(
            {"seq": {"$gt": Int64(after), "$lte": Int64(through)}, "scheme": self.scheme.id},
            {"seq": 1, "bands": 1, "sketch": 1},
        )
        for doc in found:
            row = self._row(doc)
            if row is None:
                continue
            if row[0] in self._ahead:
                self._ahead.discard(row[0])
                continue
            rows.append(row)
        if rows:
            self._add(rows)
        return len(rows)

    def _verify(self, entry: Entry, doc: Mapping[str, Any]) -> str | None:
        """``exact``, ``near`` or None (not a duplicate, or indexed otherwise)."""
        if doc.get("scheme") != self.scheme.id or not doc.get("sig"):
            return None
        return self._verify_pair(entry, doc.get("text_hash"), _sig_of(bytes(doc["sig"])))

    def _verify_pair(self, entry: Entry, other_hash: Any, sig: Signature) -> str | None:
        if other_hash == entry.text_hash:
            return EXACT
        if (
            len(sig) == len(entry.sig)
            and estimated_jaccard(entry.sig, sig) >= self.scheme.threshold
        ):
            return NEAR
        return None

    def link(
        self,
        todo: Sequence[Entry],
        edges: Mapping[tuple[str, str], str],
        result: LinkResult,
        roots: Mapping[str, str] | None = None,
    ) -> None:
        """Merge the clusters ``edges`` join, point every member at the
        earliest-published article, mark the entries linked; ``roots``
        (article -> its root, known from the index) are pointed too."""
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
            if found is not None:
                ops.append(UpdateOne({"_id": entry.key}, {"$set": {"match": found}}))
        if ops:
            self.index.bulk_write(ops, ordered=True)
        result.merges.extend(merges)
        point = dict(roots or {})
        if merges:
            members = self.index.find({"root": {"$in": [m.root for m in merges]}}, {"root": 1})
            point.update({doc["_id"]: doc["root"] for doc in members})
        if point:
            result.articles_changed += self._point_articles(point)
        for entry in todo:
            self._unlinked.pop(entry.key, None)

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

    # -- size ---------------------------------------------------------------------

    @property
    def memory_bytes(self) -> int:
        """Bytes of the band table's arrays (what grows with the index)."""
        return self.table.nbytes
