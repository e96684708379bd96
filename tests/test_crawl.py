"""End-to-end crawls: the replica over real HTTP(S) on loopback, through the
proxy, into a real MongoDB-wire server. Nothing mocked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database

from newscrawl.replica.build import build_site_from_posts
from newscrawl.replica.posts import sample_posts_dir
from newscrawl.replica.process import ReplicaProcess
from tests.crawling import differences, fetch_counts, load_expected, run_crawl

pytestmark = pytest.mark.crawl

SEED_KEY = "finews:NW202202182281010830"


@pytest.fixture(scope="module")
def real_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ReplicaProcess]]:
    """A replica holding only the real sample posts."""
    site = tmp_path_factory.mktemp("real-site")
    build_site_from_posts(sample_posts_dir(), site)
    with ReplicaProcess.start(site, access_log=site / "access.jsonl") as replica:
        yield site, replica


@pytest.fixture(scope="module")
def generated_site(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, ReplicaProcess]]:
    """A generated replica of 300 articles with every variation."""
    from newscrawl.replica.build import build_site

    site = tmp_path_factory.mktemp("site-300")
    build_site(site, articles=300, seed=20261129)
    with ReplicaProcess.start(site, access_log=site / "access.jsonl") as replica:
        yield site, replica


def test_real_posts_are_stored_exactly_as_expected(
    real_site: tuple[Path, ReplicaProcess],
    mongo_settings: dict[str, Any],
    mongo_db: Database[dict[str, Any]],
    tmp_path: Path,
) -> None:
    site, replica = real_site
    code, stats, output = run_crawl(replica.proxy_url, mongo_settings, tmp_path)
    assert code == 0, output[-3000:]

    expected = load_expected(sample_posts_dir() / "expected.jsonl")
    docs = list(mongo_db.articles.find())
    assert sorted(doc["_id"] for doc in docs) == sorted(expected)
    assert differences(docs, expected) == []

    seed = mongo_db.articles.find_one({"_id": SEED_KEY})
    assert seed is not None
    assert seed["title"] == "峄城精准监督护航营商环境"
    assert seed["published_at"].isoformat() == "2022-02-18T02:01:44+00:00"
    assert seed["categories"] == ["dazhongribao"]
    assert seed["source"] == "大众日报"
    assert seed["authors"] == ["张环泽"]
    assert seed["correspondents"] == ["赵峰", "顿星亮"]
    assert seed["body"].startswith("“以前，我手机里面")
    for absent in ("本报记者", "本报通讯员", "文章来源", "返回", "http", "NewsShare"):
        assert absent not in seed["body"]

    assert stats["newscrawl/store/inserted"] == len(expected)
    assert stats.get("log_count/ERROR", 0) == 0
    counts = fetch_counts(site / "access.jsonl")
    assert {url: n for url, n in counts.items() if n > 1} == {}


def test_generated_site_stores_every_reachable_article_once(
    generated_site: tuple[Path, ReplicaProcess],
    mongo_settings: dict[str, Any],
    mongo_db: Database[dict[str, Any]],
    tmp_path: Path,
) -> None:
    site, replica = generated_site
    code, stats, output = run_crawl(replica.proxy_url, mongo_settings, tmp_path)
    assert code == 0, output[-3000:]

    expected = load_expected(site / "expected.jsonl")
    reachable = {key: doc for key, doc in expected.items() if doc.get("reachable", True)}
    assert len(expected) >= 300
    docs = list(mongo_db.articles.find())
    stored = [doc["_id"] for doc in docs]
    # every reachable article, once; nothing else (no home, category, 404 or share documents)
    assert len(stored) == len(set(stored))
    assert sorted(stored) == sorted(reachable)
    assert differences(docs, reachable) == []
    urls = [doc["url"] for doc in docs]
    assert len(urls) == len(set(urls))

    assert stats.get("log_count/ERROR", 0) == 0
    # a clean crawl says nothing alarming: no warning at all (a deprecated
    # Scrapy API in the spider showed one in every crawl's log)
    assert "Warning" not in output, output[-3000:]
    assert not any(key.startswith("item_dropped_reasons_count/") for key in stats)
    # an article reached through two categories was merged, not stored twice
    assert stats.get("newscrawl/dedup/merged", 0) > 0
    counts = fetch_counts(site / "access.jsonl")
    assert {url: n for url, n in counts.items() if n > 1} == {}


def test_unreachable_mongo_uri_fails_at_start_with_a_clear_message(
    real_site: tuple[Path, ReplicaProcess], tmp_path: Path
) -> None:
    import socket

    timeout = 5
    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        settings = {"MONGO_URI": f"mongodb://127.0.0.1:{port}/", "MONGO_CONNECT_TIMEOUT": timeout}
        started = time.monotonic()
        code, stats, output = run_crawl(real_site[1].proxy_url, settings, tmp_path, timeout=60)
        took = time.monotonic() - started
    assert code != 0
    assert f"127.0.0.1:{port}" in output
    assert stats.get("item_scraped_count", 0) == 0
    # the summary says why, whichever component met the database first
    assert f"store error        cannot reach MongoDB at mongodb://127.0.0.1:{port}/" in output
    # one connect timeout for the crawl, not one per component that opens the
    # store (five do: 25 s and more before open_crawl_store)
    assert took < 2 * timeout + 5, took
