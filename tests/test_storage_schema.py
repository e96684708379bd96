"""The article schema, its validator and the collections, on a real server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from itemadapter import ItemAdapter
from pymongo.errors import DuplicateKeyError, WriteError

from newscrawl.dedup import ARTICLE_FIELDS as DEDUP_FIELDS
from newscrawl.incremental import ARTICLE_FIELDS as INCREMENTAL_FIELDS
from newscrawl.items import Article
from newscrawl.storage.documents import STORE_FIELDS, merge, to_document
from newscrawl.storage.sanitize import MARK_FIELDS
from newscrawl.storage.schema import (
    ARTICLE_VERSIONS,
    ARTICLES,
    ensure_collections,
    load_schema,
    mongo_validator,
)

NOW = datetime(2024, 3, 1, tzinfo=UTC)


def stored_doc(n: int = 1, **fields):
    item = Article(
        key=f"finews:NW20240301000000000{n}",
        site="finews",
        info_code=f"NW20240301000000000{n}",
        url=f"https://finews.withounder.com/a/{n}.html",
        urls=[f"https://finews.withounder.com/a/{n}.html"],
        title="标题",
        published_at=NOW,
        published_at_source="page",
        body="正文。",
        summary="正文。",
        images=[{"src": "https://img.example/1.jpg", "caption": None}],
    )
    doc, _, _ = merge(None, to_document(ItemAdapter(item)), "run-1", NOW)
    doc.update(fields)
    return doc


def test_schema_describes_every_field():
    schema = load_schema()
    properties = schema["properties"]
    item_fields = set(Article.__dataclass_fields__) - {"key"}
    assert set(properties) == {
        "_id",
        *item_fields,
        *STORE_FIELDS,
        *MARK_FIELDS,
        *DEDUP_FIELDS,
        *INCREMENTAL_FIELDS,
    }
    for name, spec in properties.items():
        assert spec.get("description"), name
        assert "bsonType" in spec, name
    for name in ("published_at", "first_seen_at", "last_seen_at", "updated_at"):
        assert "date" in properties[name]["bsonType"], name
    assert set(schema["required"]) <= set(properties)


def test_validator_keeps_only_what_mongodb_accepts():
    validator = mongo_validator(load_schema())["$jsonSchema"]
    assert "$schema" not in validator and "type" not in validator
    published = validator["properties"]["published_at"]
    assert published == {
        "bsonType": ["date", "null"],
        "description": load_schema()["properties"]["published_at"]["description"],
    }
    image = validator["properties"]["images"]["items"]
    assert "type" not in image and "type" not in image["properties"]["src"]


def test_ensure_collections_creates_validator_and_indexes(mongo_db):
    ensure_collections(mongo_db)
    names = set(mongo_db.list_collection_names())
    assert {ARTICLES, ARTICLE_VERSIONS} <= names
    options = mongo_db[ARTICLES].options()
    assert options["validator"] == mongo_validator(load_schema())
    indexes = {ix["name"]: ix for ix in mongo_db[ARTICLES].list_indexes()}
    # _id, info_code (unique), published_at, categories, updated_at (first of updated_at_id)
    assert set(indexes) == {
        "_id_", "info_code_unique", "published_at_1", "categories_1", "updated_at_id",
    }  # fmt: skip
    assert list(indexes["updated_at_id"]["key"]) == ["updated_at", "_id"]
    assert indexes["info_code_unique"]["unique"] is True
    assert indexes["info_code_unique"]["partialFilterExpression"] == {
        "info_code": {"$type": "string"}
    }
    versions = {ix["name"]: ix for ix in mongo_db[ARTICLE_VERSIONS].list_indexes()}
    assert dict(versions["article_id_version"]["key"]) == {"article_id": 1, "version": 1}


def test_ensure_collections_is_idempotent(mongo_db):
    ensure_collections(mongo_db)
    mongo_db[ARTICLES].insert_one(stored_doc())
    before = sorted(ix["name"] for ix in mongo_db[ARTICLES].list_indexes())
    ensure_collections(mongo_db)
    ensure_collections(mongo_db)
    assert sorted(ix["name"] for ix in mongo_db[ARTICLES].list_indexes()) == before
    assert mongo_db[ARTICLES].count_documents({}) == 1


def test_ensure_collections_updates_an_old_validator(mongo_db):
    old = {"$jsonSchema": {"bsonType": "object", "required": ["_id"]}}
    mongo_db.create_collection(ARTICLES, validator=old)
    mongo_db[ARTICLES].insert_one({"_id": "kept"})
    ensure_collections(mongo_db)
    assert mongo_db[ARTICLES].options()["validator"] == mongo_validator(load_schema())
    assert mongo_db[ARTICLES].find_one({"_id": "kept"}) == {"_id": "kept"}


def test_validator_accepts_a_stored_article(mongo_db):
    ensure_collections(mongo_db)
    doc = stored_doc()
    mongo_db[ARTICLES].insert_one(doc)
    assert mongo_db[ARTICLES].find_one({"_id": doc["_id"]}) == doc


@pytest.mark.parametrize(
    "change",
    [
        {"title": 42},  # wrong type
        {"published_at": "2024-03-01T00:00:00Z"},  # a date as text
        {"version": "1"},
        {"kind": "rumour"},  # not an allowed value
        {"urls": "https://one.url"},  # not a list
        {"images": [{"caption": "no src"}]},
        {"content_hash": "not-a-sha1"},
    ],
)
def test_validator_rejects_a_wrong_document(mongo_db, change):
    ensure_collections(mongo_db)
    with pytest.raises(WriteError) as info:
        mongo_db[ARTICLES].insert_one(stored_doc(**change))
    assert info.value.code == 121  # DocumentValidationFailure


def test_validator_rejects_a_missing_store_field(mongo_db):
    ensure_collections(mongo_db)
    doc = stored_doc()
    del doc["first_seen_at"]
    with pytest.raises(WriteError):
        mongo_db[ARTICLES].insert_one(doc)


def test_info_code_unique_only_where_present(mongo_db):
    ensure_collections(mongo_db)
    articles = mongo_db[ARTICLES]
    articles.insert_one(stored_doc(1, kind="notice", info_code=None))
    articles.insert_one(stored_doc(2, kind="notice", info_code=None))
    articles.insert_one(stored_doc(3))
    with pytest.raises(DuplicateKeyError):
        articles.insert_one(stored_doc(4, info_code="NW202403010000000003"))
