"""Migrations and the schema version recorded in the database, on a real server."""

from __future__ import annotations

import copy
import logging

import pytest
from pymongo import monitoring
from pymongo.errors import WriteError

from newscrawl.storage.migrations import LATEST, META, SCHEMA_DOC, ensure_collections
from newscrawl.storage.schema import (
    ARTICLES,
    ARTICLES_REJECTED,
    VALIDATION,
    load_schema,
    mongo_validator,
)
from tests.test_storage_schema import stored_doc


def schema_requiring(field: str) -> dict:
    """The committed schema with one more required field (a schema change)."""
    schema = copy.deepcopy(load_schema())
    schema["required"].append(field)
    return schema


def meta(db) -> dict:
    return db[META].find_one({"_id": SCHEMA_DOC})


def test_fresh_database_gets_every_migration_and_the_validator(mongo_db):
    state = ensure_collections(mongo_db)
    assert state.applied == list(range(1, LATEST + 1)) and state.validator_updated
    record = meta(mongo_db)
    assert record["version"] == LATEST
    assert [step["version"] for step in record["applied"]] == state.applied
    assert record["validators"] == [record["validator_sha1"]]
    assert {ARTICLES, ARTICLES_REJECTED, "article_versions", META} <= set(
        mongo_db.list_collection_names()
    )
    assert mongo_db[ARTICLES].options()["validator"] == mongo_validator(load_schema())
    indexes = {ix["name"]: dict(ix["key"]) for ix in mongo_db[ARTICLES].list_indexes()}
    assert indexes["updated_at_id"] == {"updated_at": 1, "_id": 1}
    rejected = {ix["name"] for ix in mongo_db[ARTICLES_REJECTED].list_indexes()}
    assert {"rejected_at_1", "article_id_1"} <= rejected


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event):
        self.names.append(f"{event.command_name}:{event.command.get(event.command_name)}")

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_up_to_date_start_is_one_read(mongo_uri, mongo_db_name):
    from pymongo import MongoClient

    listener = Commands()
    client = MongoClient(mongo_uri, event_listeners=[listener])
    try:
        db = client[mongo_db_name]
        ensure_collections(db)
        listener.names.clear()
        state = ensure_collections(db)
        assert state.applied == [] and not state.validator_updated
        assert listener.names == [f"find:{META}"]
    finally:
        client.close()


def test_schema_change_reaches_the_database_on_next_start(mongo_db):
    ensure_collections(mongo_db)
    first = meta(mongo_db)["validator_sha1"]
    mongo_db[ARTICLES].insert_one(stored_doc(1))  # valid today, lacks the new field

    changed = schema_requiring("site_section")
    state = ensure_collections(mongo_db, changed)
    assert state.validator_updated and state.applied == []
    record = meta(mongo_db)
    assert record["validators"] == [first, record["validator_sha1"]]
    assert mongo_db[ARTICLES].options()["validator"] == mongo_validator(changed)
    with pytest.raises(WriteError) as info:
        mongo_db[ARTICLES].insert_one(stored_doc(2))
    assert info.value.code == 121
    mongo_db[ARTICLES].insert_one(stored_doc(3, site_section="x"))
    assert mongo_db[ARTICLES].count_documents({}) == 2  # stored documents are kept


def test_an_older_crawler_does_not_undo_a_newer_validator(mongo_db, caplog):
    ensure_collections(mongo_db)  # old code
    changed = schema_requiring("site_section")
    ensure_collections(mongo_db, changed)  # upgraded code
    with caplog.at_level(logging.WARNING):
        state = ensure_collections(mongo_db)  # the old code again
    assert state.newer and not state.validator_updated
    assert mongo_db[ARTICLES].options()["validator"] == mongo_validator(changed)
    assert "newer article validator" in caplog.text


def test_database_from_before_the_meta_record_is_upgraded_in_place(mongo_db):
    old = {"$jsonSchema": {"bsonType": "object", "required": ["_id"]}}
    mongo_db.create_collection(ARTICLES, validator=old, **VALIDATION)
    mongo_db[ARTICLES].insert_one({"_id": "kept"})
    state = ensure_collections(mongo_db)
    assert state.applied == list(range(1, LATEST + 1)) and state.validator_updated
    assert mongo_db[ARTICLES].options()["validator"] == mongo_validator(load_schema())
    assert mongo_db[ARTICLES].find_one({"_id": "kept"}) == {"_id": "kept"}
    assert ARTICLES_REJECTED in mongo_db.list_collection_names()


def test_only_missing_steps_run(mongo_db):
    ensure_collections(mongo_db)
    mongo_db.drop_collection(ARTICLES_REJECTED)
    mongo_db[META].update_one({"_id": SCHEMA_DOC}, {"$set": {"version": 1}})
    state = ensure_collections(mongo_db)
    assert state.applied == [2, 3] and not state.validator_updated
    assert ARTICLES_REJECTED in mongo_db.list_collection_names()
    assert meta(mongo_db)["version"] == LATEST


def test_indexes_no_query_uses_are_dropped(mongo_db):
    """A database made by an earlier version (at version 2) still had an
    index on ``urls`` and one on ``updated_at`` alone: migration 3 drops both
    and keeps the data and the ``updated_at`` index exports use."""
    from pymongo import ASCENDING, IndexModel

    ensure_collections(mongo_db)
    mongo_db[ARTICLES].create_indexes(
        [
            IndexModel([("updated_at", ASCENDING)], name="updated_at_1"),
            IndexModel([("urls", ASCENDING)], name="urls_1"),
        ]
    )
    mongo_db[ARTICLES].insert_one(stored_doc())
    mongo_db[META].update_one({"_id": SCHEMA_DOC}, {"$set": {"version": 2}})
    state = ensure_collections(mongo_db)
    assert state.applied == [3]
    names = {index["name"] for index in mongo_db[ARTICLES].list_indexes()}
    assert names == {"_id_", "info_code_unique", "published_at_1", "categories_1", "updated_at_id"}
    assert mongo_db[ARTICLES].count_documents({}) == 1
    # a second process running the same step finds nothing left to drop
    mongo_db[META].update_one({"_id": SCHEMA_DOC}, {"$set": {"version": 2}})
    assert ensure_collections(mongo_db).applied == [3]


def test_newer_database_is_left_alone(mongo_db, caplog):
    ensure_collections(mongo_db)
    mongo_db[META].update_one({"_id": SCHEMA_DOC}, {"$set": {"version": LATEST + 1}})
    mongo_db.drop_collection(ARTICLES_REJECTED)
    with caplog.at_level(logging.WARNING):
        state = ensure_collections(mongo_db, schema_requiring("site_section"))
    assert state.newer and state.applied == [] and not state.validator_updated
    assert ARTICLES_REJECTED not in mongo_db.list_collection_names()
    assert mongo_db[ARTICLES].options()["validator"] == mongo_validator(load_schema())
    assert "upgrade newscrawl" in caplog.text


def test_concurrent_starts_end_in_one_consistent_state(mongo_uri, mongo_db_name):
    from concurrent.futures import ThreadPoolExecutor

    from pymongo import MongoClient

    clients = [MongoClient(mongo_uri) for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda c: ensure_collections(c[mongo_db_name]), clients))
        db = clients[0][mongo_db_name]
        record = meta(db)
        assert record["version"] == LATEST
        assert set(record["validators"]) == {record["validator_sha1"]}
        assert db[ARTICLES].options()["validator"] == mongo_validator(load_schema())
    finally:
        for client in clients:
            client.close()
