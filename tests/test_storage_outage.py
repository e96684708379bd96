"""The database server stops in the middle of a real crawl of the replica and
starts again later (same port, same data): every article of the replica is
stored exactly once at the end, and the journal is empty."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from newscrawl.replica.build import build_site
from newscrawl.replica.process import ReplicaProcess
from newscrawl.storage.embedded import EmbeddedMongo
from tests.crawling import load_expected, run_crawl
from tests.test_storage_resilience import Outage

pytestmark = pytest.mark.crawl


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ReplicaProcess]]:
    site = tmp_path_factory.mktemp("site-outage")
    build_site(site, articles=150, seed=90210)
    with ReplicaProcess.start(site, access_log=site / "access.jsonl") as replica:
        yield site, replica


def test_database_stopped_and_restarted_mid_crawl_loses_nothing(
    site: tuple[Path, ReplicaProcess], tmp_path: Path
) -> None:
    site_dir, replica = site
    reachable = {
        key for key, doc in load_expected(site_dir / "expected.jsonl").items()
        if doc.get("reachable", True)
    }  # fmt: skip
    data_dir = tmp_path / ".newscrawl"
    server = EmbeddedMongo(tmp_path / "mongo")
    uri = server.start()
    # stopped once 20 articles are stored; down 6 s (far longer than the
    # retries of one batch: 2 tries of 1 s) and until the journal has a file
    outage = Outage(server, data_dir / "journal", after=20, down=6, database="outage")
    outage.start()
    settings: dict[str, Any] = {
        "MONGO_URI": uri,
        "MONGO_DATABASE": "outage",
        "NEWSCRAWL_DATA_DIR": str(data_dir),
        "MONGO_CONNECT_TIMEOUT": 1,
        "MONGO_BATCH_SIZE": 10,
        "MONGO_FLUSH_SECONDS": 0.5,
        "MONGO_RETRY_TIMES": 1,
        "MONGO_RETRY_BACKOFF": 0.1,
        "MONGO_RECONNECT_SECONDS": 0.5,
        # slow enough (about 20 s) that the server is back well before the end
        "AUTOTHROTTLE_ENABLED": False,
        "DOWNLOAD_DELAY": 0.1,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
    }
    try:
        code, stats, output = run_crawl(replica.proxy_url, settings, tmp_path, timeout=300)
        outage.join(60)
        assert outage.error is None, outage.error
        assert outage.restarted is not None and outage.restarted.uri == uri
        client: Any = MongoClient(uri, tz_aware=True)
        try:
            stored = [doc["_id"] for doc in client.outage.articles.find({}, {"_id": 1})]
            versions = client.outage.articles.distinct("version")
        finally:
            client.close()
    finally:
        outage.join(60)
        if outage.restarted is not None:
            outage.restarted.stop()
        server.stop()

    assert code == 0, output[-3000:]
    assert stats["finish_reason"] == "finished"
    # the outage happened and went through the journal
    assert stats["newscrawl/store/outages"] == 1
    assert stats["newscrawl/store/journaled"] > 0
    assert stats["newscrawl/store/replayed"] == stats["newscrawl/store/journaled"]
    assert outage.down_for >= 6
    # every article of the replica, exactly once, nothing else
    assert len(stored) == len(set(stored))
    assert sorted(stored) == sorted(reachable)
    assert versions == [1]
    # nothing lost, nothing left behind
    assert stats.get("newscrawl/store/write_errors", 0) == 0
    assert stats["newscrawl/store/journal_pending"] == 0
    assert not list((data_dir / "journal").glob("*/*.jsonl"))
