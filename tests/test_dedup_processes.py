"""The duplicate index across processes and runs, against a real database
server: each process keeps its own band table in memory, MongoDB is what
they share.

- two OS processes index, batch for batch at the same moment, originals
  (one process) and their near copies (the other): every copy is linked;
- a second run, in a fresh process, links new copies to what the first run
  indexed (its band table is loaded from MongoDB);
- an index of the former layout (``dedup_bands``, entries without band
  keys) is upgraded in place and still links;
- entries a stopped process wrote but never linked are indexed again.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bson import Binary
from pymongo import MongoClient
from pymongo.database import Database

from newscrawl.dedup.index import (
    INDEX_COLLECTION,
    OLD_BANDS_COLLECTION,
    WRITERS_COLLECTION,
    DuplicateIndex,
    Entry,
    LinkResult,
    make_entry,
    writer_of,
)
from newscrawl.dedup.minhash import make_scheme
from newscrawl.dedup.synthetic import SMALL_EDIT, Synthetic, labelled_set

SCHEME = make_scheme(0.5, 128, 5)
BATCH = 25

Db = Database[dict[str, Any]]
Article = tuple[str, str, datetime]


def entries(articles: Sequence[Article]) -> list[Entry]:
    made = [make_entry(key, body, when, SCHEME, 50) for key, body, when in articles]
    return [entry for entry in made if entry is not None]


def index_in_process(
    tag: int,
    uri: str,
    name: str,
    batches: list[list[Article]],
    barrier: Barrier | None,
    results: Any,
) -> None:
    """A crawler process: its own client and index, one batch at a time
    (after the other process reached the same batch, when ``barrier``)."""
    client: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True)
    try:
        index = DuplicateIndex(client[name], SCHEME)
        index.ensure()
        loaded = index.open()
        total = LinkResult()
        for batch in batches:
            if barrier is not None:
                barrier.wait(timeout=120)
            result = index.process(entries(batch))
            total.indexed += result.indexed
            total.read += result.read
            total.near += result.near
            total.exact += result.exact
        index.close()
        results.put((tag, index.writer, loaded.entries, total.indexed, total.read))
    finally:
        client.close()


def run_processes(
    uri: str, name: str, work: list[list[list[Article]]], together: bool
) -> list[tuple[int, int, int, int]]:
    """Each item of ``work`` in its own spawned process: all at once, in
    lockstep (``together``), or one after the other."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    barrier = context.Barrier(len(work)) if together else None
    started = []
    for tag, batches in enumerate(work):
        process = context.Process(
            target=index_in_process, args=(tag, uri, name, batches, barrier, results)
        )
        process.start()
        started.append(process)
        if not together:
            process.join(timeout=300)
    done = sorted(results.get(timeout=300) for _ in work)
    for process in started:
        process.join(timeout=300)
        assert process.exitcode == 0
    return [result[1:] for result in done]


def chunks(items: Sequence[Article], size: int) -> list[list[Article]]:
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


def as_article(item: Synthetic) -> Article:
    return (item.key, item.body, item.published_at)


@pytest.fixture(scope="module")
def labelled() -> list[Synthetic]:
    """Originals; near and exact copies of half of them; related stories."""
    return list(labelled_set(300, seed=17, copy_rate=0.5, related_rate=0.1))


def check_links(db: Db, labelled: list[Synthetic]) -> None:
    roots = {doc["_id"]: doc["root"] for doc in db[INDEX_COLLECTION].find({}, {"root": 1})}
    assert len(roots) == len(labelled)
    copies = [a for a in labelled if a.copy_of is not None and a.edit <= SMALL_EDIT]
    assert len(copies) > 80
    linked = [a for a in copies if roots[a.key] == roots[str(a.copy_of)]]
    assert len(linked) / len(copies) >= 0.98
    by_key = {a.key: a for a in labelled}
    false_links = {
        key: root
        for key, root in roots.items()
        if root != key and by_key[key].copy_of != root and by_key[root].copy_of != key
    }
    assert false_links == {}


def test_two_processes_indexing_copies_at_the_same_moment_link_them(
    mongo_uri: str, mongo_db_name: str, mongo_db: Db, labelled: list[Synthetic]
) -> None:
    """Process one indexes the originals, process two their copies, batch k
    of both at once: each pair is written by different processes at the
    same moment (so the one that searches last must see the other's)."""
    originals = [a for a in labelled if a.copy_of is None]
    order = {a.key: at for at, a in enumerate(originals)}
    others = sorted(
        (a for a in labelled if a.copy_of is not None),
        key=lambda a: order[str(a.copy_of)],
    )
    one = chunks([as_article(a) for a in originals], BATCH)
    two: list[list[Article]] = [[] for _ in one]
    for copy in others:
        two[order[str(copy.copy_of)] // BATCH].append(as_article(copy))
    results = run_processes(mongo_uri, mongo_db_name, [one, two], together=True)
    check_links(mongo_db, labelled)
    (writer_one, _, indexed_one, read_one), (writer_two, _, indexed_two, read_two) = results
    assert writer_one != writer_two
    assert (indexed_one, indexed_two) == (len(originals), len(others))
    # each read the other's entries into its band table
    assert read_one > 0 and read_two > 0
    writers = {
        doc["_id"]: writer_of(doc["seq"]) for doc in mongo_db[INDEX_COLLECTION].find({}, {"seq": 1})
    }
    assert {writers[a.key] for a in originals} == {writer_one}
    assert {writers[a.key] for a in others} == {writer_two}
    closed = {doc["_id"]: doc["closed"] for doc in mongo_db[WRITERS_COLLECTION].find()}
    assert closed == {writer_one: True, writer_two: True}


def test_a_second_run_links_to_what_the_first_indexed(
    mongo_uri: str, mongo_db_name: str, mongo_db: Db, labelled: list[Synthetic]
) -> None:
    originals = [as_article(a) for a in labelled if a.copy_of is None]
    others = [as_article(a) for a in labelled if a.copy_of is not None]
    first, second = run_processes(
        mongo_uri,
        mongo_db_name,
        [chunks(originals, BATCH), chunks(others, BATCH)],
        together=False,
    )
    assert first[1] == 0
    # the fresh process loaded the first run's entries from MongoDB
    assert second[1] == len(originals)
    check_links(mongo_db, labelled)


def test_an_index_of_the_former_layout_is_upgraded_in_place(
    mongo_db: Db, labelled: list[Synthetic]
) -> None:
    """Entries as the former code wrote them (no seq, bands or sketch; a
    ``dedup_bands`` collection beside): the band collection is dropped, the
    entries get their band keys from their signature, copies still link,
    and an entry left pending is indexed again."""
    originals = [a for a in labelled if a.copy_of is None][:40]
    now = datetime.now(tz=UTC)
    old = []
    for at, entry in enumerate(entries([as_article(a) for a in originals])):
        doc: dict[str, Any] = {
            "_id": entry.key,
            "scheme": SCHEME.id,
            "text_hash": entry.text_hash,
            "length": entry.length,
            "sig": Binary(np.asarray(entry.sig, dtype="<u4").tobytes()),
            "published_at": entry.published_at,
            "indexed_at": now,
            "root": entry.key,
        }
        if at == 0:
            doc["pending"] = True
        old.append(doc)
    mongo_db[INDEX_COLLECTION].insert_many(old)
    mongo_db[OLD_BANDS_COLLECTION].insert_one({"_id": originals[0].key, "bands": [1, 2]})

    index = DuplicateIndex(mongo_db, SCHEME)
    index.ensure()
    assert OLD_BANDS_COLLECTION not in mongo_db.list_collection_names()
    loaded = index.open()
    assert (loaded.entries, loaded.upgraded) == (40, 40)
    assert mongo_db[INDEX_COLLECTION].count_documents({"sketch": {"$exists": True}}) == 40

    wanted = {a.key for a in originals}
    copies = [a for a in labelled if a.copy_of in wanted and a.edit <= SMALL_EDIT]
    assert len(copies) >= 10
    index.process(entries([as_article(a) for a in copies]))
    roots = {doc["_id"]: doc["root"] for doc in mongo_db[INDEX_COLLECTION].find({}, {"root": 1})}
    assert all(roots[a.key] == roots[str(a.copy_of)] for a in copies)
    # the entry left pending by the former code is indexed again; the others are done
    again = index.process(entries([as_article(a) for a in originals[:2]]))
    assert (again.indexed, again.unchanged) == (1, 1)
    assert mongo_db[INDEX_COLLECTION].count_documents({"pending": True}) == 0


def test_entries_a_stopped_process_never_linked_are_indexed_again(
    mongo_db: Db, labelled: list[Synthetic]
) -> None:
    originals = [a for a in labelled if a.copy_of is None]
    near = next(a for a in labelled if a.copy_of is not None and 0 < a.edit <= SMALL_EDIT)
    original = next(a for a in originals if a.key == near.copy_of)
    done = DuplicateIndex(mongo_db, SCHEME)
    done.process(entries([as_article(original)]))
    done.close()
    # a process writes the copy, then stops before searching (no link, no close)
    stopped = DuplicateIndex(mongo_db, SCHEME)
    stopped.add(entries([as_article(near)]), LinkResult())
    assert mongo_db[INDEX_COLLECTION].find_one({"_id": near.key})["root"] == near.key

    later = DuplicateIndex(mongo_db, SCHEME)
    assert later.open().entries == 2
    redone = later.process(entries([as_article(near), as_article(original)]))
    # the copy is indexed again and linked; the original, linked before, is left alone
    assert (redone.indexed, redone.unchanged, redone.near) == (1, 1, 1)
    assert mongo_db[INDEX_COLLECTION].find_one({"_id": near.key})["root"] == original.key
    assert later.process(entries([as_article(near)])).unchanged == 1


def test_a_run_starts_from_the_band_table_the_last_one_saved(
    mongo_db: Db, labelled: list[Synthetic], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The snapshot saved at close, plus what other writers added since, is
    the whole index: the next run reads only the latter from MongoDB."""
    originals = [a for a in labelled if a.copy_of is None]
    copies = [a for a in labelled if a.copy_of is not None and a.edit <= SMALL_EDIT]
    half = len(copies) // 2
    first = DuplicateIndex(mongo_db, SCHEME, snapshot_dir=tmp_path)
    first.ensure()
    assert first.open().restored == 0
    first.process(entries([as_article(a) for a in originals]))
    first.close()
    assert len(list(tmp_path.glob("*.npz"))) == 1
    # meanwhile a writer without a snapshot indexes half of the copies
    other = DuplicateIndex(mongo_db, SCHEME)
    other.process(entries([as_article(a) for a in copies[:half]]))
    other.close()

    second = DuplicateIndex(mongo_db, SCHEME, snapshot_dir=tmp_path)
    loaded = second.open()
    assert (loaded.restored, loaded.entries) == (len(originals), len(originals) + half)
    assert len(second.table) == loaded.entries
    second.process(entries([as_article(a) for a in copies[half:]]))
    second.close()
    roots = {doc["_id"]: doc["root"] for doc in mongo_db[INDEX_COLLECTION].find({}, {"root": 1})}
    assert all(roots[a.key] == roots[str(a.copy_of)] for a in copies)

    # a collection dropped and made again is another index: its snapshot is not used
    mongo_db.drop_collection(INDEX_COLLECTION)
    fresh = DuplicateIndex(mongo_db, SCHEME, snapshot_dir=tmp_path)
    fresh.ensure()
    assert fresh.open().restored == 0
    fresh.close()
    assert len(list(tmp_path.glob("*.npz"))) == 2
    # a damaged snapshot is ignored, with a warning
    for path in tmp_path.glob("*.npz"):
        path.write_bytes(b"not a snapshot")
    with caplog.at_level("WARNING"):
        assert DuplicateIndex(mongo_db, SCHEME, snapshot_dir=tmp_path).open().restored == 0
    assert "not used" in caplog.text


def test_an_open_that_fails_half_way_starts_again_next_time(
    mongo_db: Db, labelled: list[Synthetic]
) -> None:
    originals = [a for a in labelled if a.copy_of is None][:30]
    first = DuplicateIndex(mongo_db, SCHEME)
    first.process(entries([as_article(a) for a in originals]))
    first.close()
    bad = {"_id": "broken", "scheme": SCHEME.id, "seq": "not a number", "root": "broken"}
    mongo_db[INDEX_COLLECTION].insert_one({**bad, "bands": b"1" * 120, "sketch": b"2" * 32})
    index = DuplicateIndex(mongo_db, SCHEME)
    with pytest.raises(ValueError):
        index.open()
    assert (index.writer, len(index.table)) == (None, 0)
    mongo_db[INDEX_COLLECTION].delete_one({"_id": "broken"})
    assert index.open().entries == len(originals) == len(index.table)
