"""Hostile content: operator and dotted keys, giant pages, wrong types. Each
is stored safely, cut with a mark, or recorded in ``articles_rejected`` with
its reason; never lost, never an error of the whole batch."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from newscrawl.storage.batches import BatchStore, prepare_batch
from newscrawl.storage.documents import to_document
from newscrawl.storage.migrations import ensure_collections
from newscrawl.storage.sanitize import (
    DEFAULT_MAX_BYTES,
    bson_size,
    escape_key,
    unescape_key,
)
from newscrawl.storage.schema import load_schema
from tests.test_storage_pipeline import article, crawl, store_stats

MB = 1024 * 1024
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def key(n: int) -> str:
    return article(n)["key"]


def as_item(n: int, **fields):
    item = article(n, **fields)
    if isinstance(item.get("published_at"), str):
        item["published_at"] = datetime.fromisoformat(item["published_at"])
    return item


@pytest.fixture
def store(mongo_db):
    ensure_collections(mongo_db)
    return BatchStore(mongo_db)


def write(store, items):
    docs = [to_document(item) for item in items]
    prepared = prepare_batch(docs, [], "run-h", NOW, load_schema(), DEFAULT_MAX_BYTES)
    return prepared, store.write(prepared)


def test_operator_and_dotted_keys_are_stored_escaped(store, mongo_db):
    images = [{"src": "https://img/1.jpg", "caption": None, "$where": "sleep(1000)", "a.b": 1}]
    hostile = as_item(1, images=images, **{"$set": {"version": 99}, "x.y": "z"})
    _, result = write(store, [hostile])
    assert result.batch.outcomes == {key(1): "inserted"}
    doc = mongo_db.articles.find_one({"_id": key(1)})
    assert doc["images"] == [
        {"src": "https://img/1.jpg", "caption": None, "%24where": "sleep(1000)", "a%2Eb": 1}
    ]
    assert doc["%24set"] == {"version": 99} and doc["x%2Ey"] == "z"
    assert doc["version"] == 1  # "$set" did nothing
    assert {unescape_key(k) for k in doc["images"][0]} == set(images[0])
    # and the escaped form never matches the operator it looked like
    assert mongo_db.articles.count_documents({"images.%24where": {"$exists": True}}) == 1


def test_values_that_look_like_operators_stay_values(store, mongo_db):
    hostile = as_item(2, title="$where", body="{'$gt': ''}", categories=["$ne", "a.b"])
    write(store, [hostile])
    doc = mongo_db.articles.find_one({"_id": key(2)})
    assert doc["title"] == "$where" and doc["categories"] == ["$ne", "a.b"]


def test_a_20_mb_body_is_cut_with_a_mark(store, mongo_db):
    body = "新" * (20 * MB // 3 + 1)  # 20 MB of UTF-8
    prepared, result = write(store, [as_item(3, body=body), as_item(4)])
    assert prepared.truncated == 1
    assert result.batch.outcomes == {key(3): "inserted", key(4): "inserted"}
    doc = mongo_db.articles.find_one({"_id": key(3)})
    assert doc["truncated"] is True and doc["original_lengths"] == {"body": len(body)}
    assert body.startswith(doc["body"]) and len(doc["body"]) > 2 * MB
    assert bson_size(doc) <= DEFAULT_MAX_BYTES
    assert "truncated" not in mongo_db.articles.find_one({"_id": key(4)})


def test_giant_title_and_lists_are_cut_too(store, mongo_db):
    title = "x" * (12 * MB)
    outlinks = [f"https://spam.example/{n}" for n in range(600_000)]
    _, result = write(store, [as_item(5, title=title, outlinks=outlinks)])
    assert result.batch.outcomes == {key(5): "inserted"}
    doc = mongo_db.articles.find_one({"_id": key(5)})
    assert set(doc["original_lengths"]) <= {"title", "outlinks"}
    assert doc["original_lengths"]["title"] == len(title)
    assert bson_size(doc) <= DEFAULT_MAX_BYTES


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"title": 42}, "title: expected string, got int 42"),
        ({"urls": "https://one.url"}, "urls: expected array, got str"),
        ({"categories": ["ok", None]}, "categories[1]: expected string, got NoneType"),
        ({"kind": "rumour"}, "kind: 'rumour' is not one of ['news', 'notice']"),
        ({"images": [{"caption": "no src"}]}, "images[0].src: missing"),
        ({"source": {"$ne": None}}, "source: expected string or null, got dict"),
        ({"summary": 2**70}, "summary: integer 1180591620717411303424 is out of the 64-bit"),
        ({"tags": {"b", "a"}}, None),  # a set: stored as a list
        ({"extra": date(2024, 1, 1)}, "extra: a date without a time is not a storable value"),
        ({"extra": b"\x00"}, "extra: bytes is not a storable value"),
        ({"extra": object()}, "extra: object is not a storable value"),
        ({"body": "lone \ud800 surrogate"}, None),  # replaced, stored
    ],
)
def test_wrong_types_are_rejected_with_their_reason_or_made_safe(store, mongo_db, fields, reason):
    item = as_item(6, **fields)
    write(store, [item, as_item(7)])
    stored = {doc["_id"]: doc for doc in mongo_db.articles.find()}
    rejected = list(mongo_db.articles_rejected.find())
    assert key(7) in stored  # one bad document never stops the batch
    if reason is None:
        assert key(6) in stored and rejected == []
    else:
        assert key(6) not in stored
        (doc,) = rejected
        assert doc["article_id"] == key(6) and doc["stage"] == "store"
        assert doc["url"] == item["url"] and reason in doc["reason"]
        assert doc["document"]["title"] is not None  # a readable copy of what was refused


def test_bytes_in_a_described_field_are_rejected(store, mongo_db):
    write(store, [as_item(8, body=b"\xff\xfe")])
    (doc,) = mongo_db.articles_rejected.find()
    assert doc["reason"].startswith("body: bytes is not a storable value")


def test_nesting_bombs_are_rejected(store, mongo_db):
    bomb: dict = {}
    node = bomb
    for _ in range(200):
        node["x"] = {}
        node = node["x"]
    write(store, [as_item(9, images=[{"src": "s", "deep": bomb}])])
    (doc,) = mongo_db.articles_rejected.find()
    assert "nested deeper than" in doc["reason"]
    assert mongo_db.articles.count_documents({}) == 0


def test_escape_round_trip_of_any_key():
    for raw in ["$", ".", "%", "a.b.c", "$where", "%2E", "%%24", "\x00", "正常", ""]:
        assert unescape_key(escape_key(raw)) == raw
        assert "." not in escape_key(raw) and not escape_key(raw).startswith("$")


def test_hostile_items_through_a_real_crawl(mongo_settings, mongo_db):
    """The same through the pipeline: nothing is lost and the crawl is fine."""
    items = [
        article(1, images=[{"src": "https://i/1.jpg", "caption": None, "$gt": "", "k.v": 1}]),
        article(2, body="正" * (7 * MB)),  # 21 MB of UTF-8
        article(3, title=12345),  # wrong type: rejected by the store
        article(4, published_at="2024-13-45"),  # text, not a datetime: dropped, recorded
        article(5, urls="https://finews.withounder.com/x.html"),  # a string, not a list
        article(6),
    ]
    (result,) = crawl({**mongo_settings, "MONGO_BATCH_SIZE": 3}, [{"items": items}])
    stats = store_stats(result)
    assert result["stats"]["finish_reason"] == "finished"
    assert stats["inserted"] == 3 and stats["truncated"] == 1
    assert stats.get("write_errors", 0) == 0
    stored = {doc["_id"] for doc in mongo_db.articles.find({}, {"_id": 1})}
    assert stored == {key(1), key(2), key(6)}
    rejected = {doc["article_id"]: doc for doc in mongo_db.articles_rejected.find()}
    assert set(rejected) == {key(3), key(4), key(5)}
    assert rejected[key(3)]["reason"] == "title: expected string, got int 12345"
    assert rejected[key(4)]["error"] == "UnstorableItem"
    assert rejected[key(5)]["reason"].startswith("urls: expected array, got str")
    big = mongo_db.articles.find_one({"_id": key(2)})
    assert big["truncated"] is True and big["original_lengths"] == {"body": 7 * MB}
    assert mongo_db.articles.find_one({"_id": key(1)})["images"][0]["%24gt"] == ""
