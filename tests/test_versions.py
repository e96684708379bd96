"""Versions, end to end: crawl a replica, rebuild it with some articles
changed, crawl again. Exactly those articles reach version 2 with their
previous text in ``article_versions``; every other document is as it was
but for ``last_seen_at`` and ``last_run_id`` (the run that last saw it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database

from newscrawl.replica.build import build_site
from newscrawl.replica.process import ReplicaProcess
from newscrawl.replica.updates import change_posts
from tests.crawling import run_crawl

pytestmark = pytest.mark.crawl

#: what a sighting without a change may touch
SIGHTING_FIELDS = {"last_seen_at", "last_run_id"}


def test_changed_articles_become_version_2_and_nothing_else_changes(
    tmp_path: Path, mongo_settings: dict[str, Any], mongo_db: Database[dict[str, Any]]
) -> None:
    site = tmp_path / "site"
    build_site(site, articles=150, seed=4242)
    first_dir, second_dir = tmp_path / "run1", tmp_path / "run2"
    first_dir.mkdir()
    second_dir.mkdir()
    with ReplicaProcess.start(site) as replica:
        code, stats, output = run_crawl(replica.proxy_url, mongo_settings, first_dir)
        assert code == 0, output[-3000:]
        before = {doc["_id"]: doc for doc in mongo_db.articles.find()}
        assert len(before) > 100 and {doc["version"] for doc in before.values()} == {1}
        assert mongo_db.article_versions.count_documents({}) == 0

        changed = change_posts(site, count=4, seed=7)
        assert len(changed) == 4 and set(changed) <= set(before)
        # a full re-crawl (incremental skipping off): every article is seen again
        again = {**mongo_settings, "NEWSCRAWL_INCREMENTAL_ENABLED": False}
        code, stats, output = run_crawl(replica.proxy_url, again, second_dir)
        assert code == 0, output[-3000:]

    after = {doc["_id"]: doc for doc in mongo_db.articles.find()}
    assert sorted(after) == sorted(before)
    assert stats.get("newscrawl/store/updated", 0) == len(changed)

    versions = {doc["article_id"]: doc for doc in mongo_db.article_versions.find()}
    assert sorted(versions) == changed
    for key in changed:
        old, new = before[key], after[key]
        assert new["version"] == 2
        assert new["body"] != old["body"]
        assert new["updated_at"] > old["updated_at"]
        assert new["first_seen_at"] == old["first_seen_at"]
        kept = versions[key]
        assert kept["version"] == 1
        assert kept["body"] == old["body"]
        assert kept["content_hash"] == old["content_hash"]
        # one sentence changed: the rest of the text is the same
        assert len(set(old["body"].splitlines()) & set(new["body"].splitlines())) >= 1

    for key in sorted(set(before) - set(changed)):
        old, new = before[key], after[key]
        differs = {name for name in old.keys() | new.keys() if old.get(name) != new.get(name)}
        assert differs <= SIGHTING_FIELDS, (key, {n: (old.get(n), new.get(n)) for n in differs})
        assert new["last_seen_at"] > old["last_seen_at"]
