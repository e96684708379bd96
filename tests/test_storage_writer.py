"""ArticleWriter against a real server: batches, outcomes, archives, races."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pymongo import MongoClient, monitoring

from newscrawl.storage.documents import to_document
from newscrawl.storage.schema import ARTICLE_VERSIONS, ARTICLES, ensure_collections
from newscrawl.storage.writer import ArticleWriter


def item_doc(n: int, **fields):
    code = f"NW{202405010000000000 + n}"
    item = {
        "key": f"finews:{code}",
        "site": "finews",
        "kind": "news",
        "info_code": code,
        "url": f"https://finews.withounder.com/a/2024/05/01/{code}.html",
        "urls": [f"https://finews.withounder.com/a/2024/05/01/{code}.html"],
        "title": f"标题{n}",
        "published_at": datetime(2024, 5, 1, 1, 0, tzinfo=UTC),
        "published_at_source": "page",
        "derived_fields": [],
        "categories": ["a"],
        "tags": [],
        "source": None,
        "authors": [],
        "correspondents": [],
        "body": f"正文{n}。",
        "summary": f"正文{n}。",
        "images": [],
        "share_url": None,
        "origin_url": None,
        "outlinks": [],
    }
    item.update(fields)
    return to_document(item)


@pytest.fixture
def db(mongo_db):
    ensure_collections(mongo_db)
    return mongo_db


def test_batch_outcomes_and_folding(db):
    writer = ArticleWriter(db, "run-1")
    result = writer.write(
        [item_doc(1), item_doc(2), item_doc(1, urls=["u-alias"], categories=["b"])]
    )
    assert dict(result.counts) == {"inserted": 2, "merged": 1}
    assert result.outcomes == {
        "finews:NW202405010000000001": "inserted",
        "finews:NW202405010000000002": "inserted",
    }
    assert not result.failed and result.failed_items == 0
    one = db[ARTICLES].find_one({"_id": "finews:NW202405010000000001"})
    assert one["urls"][-1] == "u-alias" and one["categories"] == ["a", "b"]

    result = ArticleWriter(db, "run-2").write([item_doc(1), item_doc(2, body="新正文。")])
    assert dict(result.counts) == {"unchanged": 1, "updated": 1}
    assert result.archived == 1
    archived = db[ARTICLE_VERSIONS].find_one({"article_id": "finews:NW202405010000000002"})
    assert archived["version"] == 1 and archived["body"] == "正文2。"


def test_one_find_and_one_bulk_write_per_batch(db, mongo_uri):
    seen = []

    class Listener(monitoring.CommandListener):
        def started(self, event):
            if event.database_name == db.name:
                seen.append((event.command_name, event.command.get(event.command_name)))

        def succeeded(self, event):
            pass

        def failed(self, event):
            pass

    client = MongoClient(mongo_uri, event_listeners=[Listener()], tz_aware=True)
    try:
        # new articles are inserted (no upsert: nothing to look for first)
        ArticleWriter(client[db.name], "run-1").write([item_doc(n) for n in range(50)])
        assert seen == [("find", ARTICLES), ("insert", ARTICLES)]
        seen.clear()
        # stored ones are replaced under their guard, new ones inserted: one command each
        ArticleWriter(client[db.name], "run-2").write([item_doc(n) for n in range(25, 75)])
        assert sorted(seen) == [("find", ARTICLES), ("insert", ARTICLES), ("update", ARTICLES)]
        seen.clear()
        ArticleWriter(client[db.name], "run-3").write([item_doc(n) for n in range(50)])
        assert seen == [("find", ARTICLES), ("update", ARTICLES)]
    finally:
        client.close()
    assert db[ARTICLES].count_documents({}) == 75


def test_a_refused_document_does_not_stop_the_others(db):
    result = ArticleWriter(db, "run-1").write(
        [item_doc(1), item_doc(2, title=None), item_doc(3)]  # title must be a string
    )
    assert result.counts["inserted"] == 2
    assert list(result.failed) == ["finews:NW202405010000000002"]
    assert "121" in result.failed["finews:NW202405010000000002"]
    assert result.failed_items == 1
    assert db[ARTICLES].count_documents({}) == 2


def test_duplicate_info_code_is_a_failure_not_a_race(db):
    writer = ArticleWriter(db, "run-1")
    writer.write([item_doc(1)])
    clash = item_doc(2, info_code="NW202405010000000001")
    result = writer.write([clash])
    assert result.retries == 0
    assert "11000" in result.failed[clash["_id"]]


class RacingWriter(ArticleWriter):
    """Lets another crawl run write the same articles between this writer's
    read and its bulk write, ``races`` times."""

    def __init__(self, db, run_id, rival_docs, races=1, **kwargs):
        super().__init__(db, run_id, **kwargs)
        self.rival = ArticleWriter(db, "rival-run")
        self.rival_docs = rival_docs
        self.races = races
        self.articles = _RacingCollection(self.articles, self)


class _RacingCollection:
    def __init__(self, collection, owner):
        self._collection = collection
        self._owner = owner

    def find(self, *args, **kwargs):
        docs = list(self._collection.find(*args, **kwargs))
        if self._owner.races > 0:
            self._owner.races -= 1
            self._owner.rival.write(self._owner.rival_docs)
        return docs

    def __getattr__(self, name):
        return getattr(self._collection, name)


def test_lost_race_is_detected_and_redone(db):
    ArticleWriter(db, "run-0").write([item_doc(1)])
    rival = [item_doc(1, body="对手写的正文。", urls=["u-rival"])]
    writer = RacingWriter(db, "run-1", rival, races=1)
    result = writer.write([item_doc(1, urls=["u-mine"]), item_doc(2)])
    assert result.retries == 1
    assert not result.failed
    doc = db[ARTICLES].find_one({"_id": "finews:NW202405010000000001"})
    # the rival's update (version 2) was not overwritten blindly: ours was
    # merged on top of it as a new version, and both earlier versions archived
    assert doc["version"] == 3 and doc["last_run_id"] == "run-1"
    assert doc["urls"][-2:] == ["u-rival", "u-mine"]
    versions = sorted(v["version"] for v in db[ARTICLE_VERSIONS].find({"article_id": doc["_id"]}))
    assert versions == [1, 2]
    assert result.counts == {"updated": 1, "inserted": 1}


def test_lost_race_on_insert_is_redone(db):
    rival = [item_doc(1, body="对手先插入。")]
    writer = RacingWriter(db, "run-1", rival, races=1)
    result = writer.write([item_doc(1)])
    assert result.retries == 1 and not result.failed
    assert result.outcomes == {"finews:NW202405010000000001": "updated"}
    assert db[ARTICLES].find_one({"_id": "finews:NW202405010000000001"})["version"] == 2


def test_endless_races_give_up_with_an_error(db):
    ArticleWriter(db, "run-0").write([item_doc(1)])
    writer = RacingWriter(db, "run-1", [item_doc(1)], races=10, max_attempts=3)
    result = writer.write([item_doc(1, body="我的。"), item_doc(2)])
    assert "after 3 tries" in result.failed["finews:NW202405010000000001"]
    assert result.failed_items == 1
    assert result.counts == {"inserted": 1}


def test_rival_unchanged_sighting_is_not_overwritten(db):
    """A rival run that only adds a URL (same content, same version) still
    counts as a concurrent write: its URL survives our write."""
    ArticleWriter(db, "run-0").write([item_doc(1)])
    rival = [item_doc(1, urls=["u-rival"])]
    writer = RacingWriter(db, "run-1", rival, races=1)
    result = writer.write([item_doc(1, urls=["u-mine"])])
    assert result.retries == 1
    doc = db[ARTICLES].find_one({"_id": "finews:NW202405010000000001"})
    assert doc["urls"][-2:] == ["u-rival", "u-mine"]
    assert doc["version"] == 1 and doc["last_run_id"] == "run-1"
