"""The duplicate index against a real MongoDB-wire server (embedded SecantusDB,
or the server named by MONGO_URI): exact and near copies linked to the
earliest-published one, across batches and "processes", versions untouched."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from datasketch import MinHash
from pymongo.database import Database

from newscrawl.dedup.index import INDEX_COLLECTION, DuplicateIndex, Entry, LinkResult, make_entry
from newscrawl.dedup.minhash import (
    estimated_jaccard,
    make_scheme,
    ngram_hash,
    ngrams,
    signature,
)
from newscrawl.dedup.synthetic import Vocabulary, edit_sentences, story
from newscrawl.dedup.text import normalize_text

SCHEME = make_scheme(0.5, 128, 5)
T0 = datetime(2022, 2, 18, 2, 0, tzinfo=UTC)

Db = Database[dict[str, Any]]


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    """An original story, a near copy (one sentence in ten edited), its exact
    copy with other punctuation and spacing, and an unrelated story."""
    rng = random.Random(7)
    vocab = Vocabulary(rng)
    base = story(rng, vocab)[:10] + story(rng, vocab)[:10]
    other = story(rng, vocab)[:20]
    return {
        "original": "\n".join(base),
        "near": "\n".join(edit_sentences(rng, vocab, base, 0.1)),
        "exact": "  ".join(sentence.replace("，", ", ") for sentence in base),
        "other": "\n".join(other),
    }


def entry(key: str, body: str, hours: float | None) -> Entry:
    published = T0 + timedelta(hours=hours) if hours is not None else None
    made = make_entry(key, body, published, SCHEME, 50)
    assert made is not None
    return made


def store_articles(db: Db, *keys: str) -> None:
    """Stand-ins for stored articles (what the store pipeline writes)."""
    db.articles.insert_many(
        [{"_id": key, "version": 1, "body": key, "updated_at": T0} for key in keys]
    )


def links(db: Db) -> dict[str, str | None]:
    return {doc["_id"]: doc.get("duplicate_of") for doc in db.articles.find()}


@pytest.fixture
def index(mongo_db: Db) -> DuplicateIndex:
    made = DuplicateIndex(mongo_db, SCHEME)
    made.ensure()
    return made


# -- signatures -----------------------------------------------------------------


def test_signature_is_datasketchs_minhash_of_the_ngrams(texts: dict[str, str]) -> None:
    for text in texts.values():
        norm = normalize_text(text)
        reference = MinHash(num_perm=128, seed=1, hashfunc=ngram_hash)
        reference.update_batch(ngrams(norm, 5))
        assert np.array_equal(signature(norm, SCHEME), reference.hashvalues)


def test_estimated_jaccard_is_close_to_the_true_one(texts: dict[str, str]) -> None:
    a, b = normalize_text(texts["original"]), normalize_text(texts["near"])
    grams_a, grams_b = set(ngrams(a, 5)), set(ngrams(b, 5))
    true = len(grams_a & grams_b) / len(grams_a | grams_b)
    estimate = estimated_jaccard(signature(a, SCHEME), signature(b, SCHEME))
    assert 0.6 < true < 0.98
    assert abs(estimate - true) < 0.15
    far = estimated_jaccard(signature(a, SCHEME), signature(normalize_text(texts["other"]), SCHEME))
    assert far < 0.1


# -- linking ----------------------------------------------------------------------


def test_exact_and_near_copies_point_at_the_earliest(
    index: DuplicateIndex, mongo_db: Db, texts: dict[str, str]
) -> None:
    store_articles(mongo_db, "a", "b", "c", "d")
    first = index.process([entry("a", texts["original"], 0), entry("d", texts["other"], 0.5)])
    assert (first.indexed, first.exact, first.near, first.merges) == (2, 0, 0, [])
    second = index.process([entry("b", texts["exact"], 1), entry("c", texts["near"], 2)])
    assert (second.exact, second.near) == (1, 1)
    assert links(mongo_db) == {"a": None, "b": "a", "c": "a", "d": None}
    kinds = {doc["_id"]: doc.get("match") for doc in mongo_db[INDEX_COLLECTION].find()}
    assert kinds == {"a": None, "b": "exact", "c": "near", "d": None}
    # linking is not a new version
    assert {doc["version"] for doc in mongo_db.articles.find()} == {1}
    assert mongo_db[INDEX_COLLECTION].count_documents({"pending": True}) == 0


def test_the_earliest_copy_crawled_last_becomes_the_root(
    index: DuplicateIndex, mongo_db: Db, texts: dict[str, str]
) -> None:
    store_articles(mongo_db, "early", "mid", "late")
    index.process([entry("mid", texts["original"], 5)])
    index.process([entry("late", texts["near"], 9)])
    assert links(mongo_db) == {"early": None, "mid": None, "late": "mid"}
    result = index.process([entry("early", texts["exact"], 1)])
    assert [m.root for m in result.merges] == ["early"]
    assert links(mongo_db) == {"early": None, "mid": "early", "late": "early"}
    roots = {doc["_id"]: doc["root"] for doc in mongo_db[INDEX_COLLECTION].find()}
    assert roots == {"early": "early", "mid": "early", "late": "early"}
    assert {doc["version"] for doc in mongo_db.articles.find()} == {1}
    moved = {doc["_id"] for doc in mongo_db.articles.find({"updated_at": {"$gt": T0}})}
    assert moved == {"mid", "late"}


def test_unknown_dates_sort_last(
    index: DuplicateIndex, mongo_db: Db, texts: dict[str, str]
) -> None:
    store_articles(mongo_db, "dated", "undated")
    index.process([entry("undated", texts["original"], None), entry("dated", texts["near"], 30)])
    assert links(mongo_db) == {"dated": None, "undated": "dated"}


def test_copies_in_flight_together_find_each_other(
    index: DuplicateIndex, mongo_db: Db, texts: dict[str, str]
) -> None:
    """Both in one batch (both written before either is searched)."""
    store_articles(mongo_db, "x", "y")
    result = index.process([entry("y", texts["near"], 2), entry("x", texts["original"], 1)])
    assert result.near == 2
    assert links(mongo_db) == {"x": None, "y": "x"}


def test_two_processes_indexing_copies_at_once_link_them(
    mongo_db: Db, texts: dict[str, str]
) -> None:
    """Two crawler processes: both write their entry, then both search."""
    one, two = DuplicateIndex(mongo_db, SCHEME), DuplicateIndex(mongo_db, SCHEME)
    one.ensure()
    store_articles(mongo_db, "p1", "p2")
    first, second = LinkResult(), LinkResult()
    todo_one = one.add([entry("p2", texts["near"], 3)], first)
    todo_two = two.add([entry("p1", texts["original"], 1)], second)
    edges_one = one.match(todo_one, first)
    edges_two = two.match(todo_two, second)
    assert edges_one == edges_two == {("p1", "p2"): "near"}
    one.link(todo_one, edges_one, first)
    two.link(todo_two, edges_two, second)
    assert links(mongo_db) == {"p1": None, "p2": "p1"}


def test_unrelated_and_short_texts_stay_unlinked(
    index: DuplicateIndex, mongo_db: Db, texts: dict[str, str]
) -> None:
    store_articles(mongo_db, "o", "u")
    index.process([entry("o", texts["original"], 0), entry("u", texts["other"], 1)])
    assert links(mongo_db) == {"o": None, "u": None}
    flash = "券商赛道持续升温，产业链公司加速扩产。"
    assert make_entry("f1", flash, T0, SCHEME, 50) is None


def test_reindexing_skips_unchanged_and_redoes_changed_or_unfinished(
    index: DuplicateIndex, mongo_db: Db, texts: dict[str, str]
) -> None:
    store_articles(mongo_db, "r1", "r2")
    index.process([entry("r1", texts["original"], 0)])
    again = index.process([entry("r1", texts["original"], 0)])
    assert (again.unchanged, again.indexed, again.candidates) == (1, 0, 0)
    # a batch that failed after writing its entries leaves them pending: redone
    index.add([entry("r2", texts["near"], 1)], LinkResult())
    assert links(mongo_db)["r2"] is None
    redone = index.process([entry("r2", texts["near"], 1)])
    assert redone.indexed == 1
    assert links(mongo_db) == {"r1": None, "r2": "r1"}
    # a changed text is indexed again (and keeps its cluster)
    changed = index.process([entry("r2", texts["near"] + "\n补充一段新的内容。", 1)])
    assert changed.indexed == 1
    assert links(mongo_db) == {"r1": None, "r2": "r1"}


def test_other_schemes_are_never_compared(mongo_db: Db, texts: dict[str, str]) -> None:
    store_articles(mongo_db, "s1", "s2")
    old = DuplicateIndex(mongo_db, make_scheme(0.5, 128, 4))
    old.ensure()
    made = make_entry("s1", texts["original"], T0, old.scheme, 50)
    assert made is not None
    old.process([made])
    DuplicateIndex(mongo_db, SCHEME).process([entry("s2", texts["exact"], 1)])
    assert links(mongo_db) == {"s1": None, "s2": None}


def test_sync_puts_back_a_link_the_store_overwrote(
    index: DuplicateIndex, mongo_db: Db, texts: dict[str, str]
) -> None:
    store_articles(mongo_db, "k1", "k2")
    index.process([entry("k1", texts["original"], 0), entry("k2", texts["near"], 1)])
    mongo_db.articles.replace_one({"_id": "k2"}, {"version": 2, "body": "new", "updated_at": T0})
    assert links(mongo_db)["k2"] is None
    assert index.sync_articles(["k1", "k2", "unknown"]) == 1
    assert links(mongo_db) == {"k1": None, "k2": "k1"}
    assert index.sync_articles(["k1", "k2"]) == 0
