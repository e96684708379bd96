"""Pause and resume: a crawl with a JOBDIR stopped by SIGTERM half-way and
resumed stores the same articles as an uninterrupted crawl, none twice.
Crawls in child processes, through the replica, into a real database server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from newscrawl.incremental.state import post_urls
from newscrawl.replica.build import build_site
from newscrawl.replica.process import ReplicaProcess
from newscrawl.sites import canonical_url, finews
from tests.crawling import COMPARED, run_crawl
from tests.test_incremental import AccessLog, crawl_settings

pytestmark = pytest.mark.crawl

#: a steady pace, so that "half-way" is a moment the test can catch
STEADY = {
    "AUTOTHROTTLE_ENABLED": "False",
    "DOWNLOAD_DELAY": "0.01",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "4",
    "MONGO_BATCH_SIZE": "10",
}


@pytest.fixture
def other_db(mongo_client: MongoClient[dict[str, Any]]) -> Iterator[Database[dict[str, Any]]]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield mongo_client[name]
    finally:
        mongo_client.drop_database(name)


def start_crawl(proxy_url: str, settings: dict[str, Any], workdir: Path) -> subprocess.Popen[str]:
    """``newscrawl crawl finews`` in a child process (stats in workdir/stats.json)."""
    cmd = [sys.executable, "-m", "newscrawl", "crawl", "finews"]
    cmd += ["--stats-out", str(workdir / "stats.json")]
    for name, value in settings.items():
        cmd += ["-s", f"{name}={value}"]
    env = {**os.environ, "http_proxy": proxy_url, "https_proxy": proxy_url}
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    return subprocess.Popen(
        cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_crawl_stopped_with_sigterm_and_resumed_stores_the_same_articles(
    tmp_path: Path,
    mongo_settings: dict[str, Any],
    mongo_db: Database[dict[str, Any]],
    other_db: Database[dict[str, Any]],
) -> None:
    site = tmp_path / "site"
    build_site(site, articles=300, seed=20261202)
    log = AccessLog(site / "access.jsonl")
    with ReplicaProcess.start(site, access_log=log.path) as replica:
        # the reference: one uninterrupted crawl
        whole_dir = tmp_path / "whole"
        whole_dir.mkdir()
        settings = crawl_settings(mongo_settings, site, **STEADY)
        code, whole_stats, output = run_crawl(replica.proxy_url, settings, whole_dir)
        assert code == 0, output[-3000:]
        whole_requests = len(log.take())

        # the same crawl with a JOBDIR, stopped half-way
        jobdir = tmp_path / "job"
        parts = tmp_path / "part1", tmp_path / "part2"
        for part in parts:
            part.mkdir()
        settings = {**settings, "MONGO_DATABASE": other_db.name, "JOBDIR": str(jobdir)}
        proc = start_crawl(replica.proxy_url, settings, parts[0])
        first: list[dict[str, Any]] = []
        deadline = time.monotonic() + 300
        while len(first) < whole_requests // 2:
            assert proc.poll() is None, "the crawl ended before it could be stopped"
            assert time.monotonic() < deadline
            first += log.take()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        output1, _ = proc.communicate(timeout=120)
        first += log.take()
        stats1 = json.loads((parts[0] / "stats.json").read_text())
        assert stats1["finish_reason"] == "shutdown", output1[-3000:]
        stored_half = other_db.articles.count_documents({})
        assert 0 < stored_half < whole_stats["newscrawl/store/inserted"]

        # resumed with the same JOBDIR
        code, stats2, output2 = run_crawl(replica.proxy_url, settings, parts[1])
        assert code == 0, output2[-3000:]
        second = log.take()

    whole = {doc["_id"]: doc for doc in mongo_db.articles.find()}
    resumed = {doc["_id"]: doc for doc in other_db.articles.find()}
    assert sorted(resumed) == sorted(whole)
    for key, doc in whole.items():
        for name in COMPARED:
            a, b = doc.get(name), resumed[key].get(name)
            if name in ("categories", "tags"):
                a, b = sorted(a or []), sorted(b or [])
            assert a == b, (key, name, a, b)
        # the same pages (the raw URL forms depend on which link was met first)
        assert sorted(post_urls(doc["urls"])) == sorted(post_urls(resumed[key]["urls"])), key
        assert resumed[key]["version"] == 1  # stored once, never rewritten as a new version
    inserted = stats1.get("newscrawl/store/inserted", 0) + stats2.get("newscrawl/store/inserted", 0)
    assert inserted == len(whole)

    # the resumed half did not start over: what the first half fetched is not
    # fetched again, except the posts whose share JSON was still awaited at the
    # stop, and the share JSON of an article stored before the stop that is met
    # again through its other category (the spider's share cache is not saved)
    resumed_posts = stats2.get("newscrawl/jobdir/resumed_posts", 0)
    fetched_before = {canonical_url(e["url"]) for e in first}
    again = [
        e["url"]
        for e in second
        if canonical_url(e["url"]) in fetched_before and not e["url"].endswith("/robots.txt")
    ]
    posts_again = [url for url in again if finews.route(url) == finews.POST]
    shares_again = [url for url in again if finews.route(url) == finews.SHARE_JSON]
    assert len(posts_again) + len(shares_again) == len(again), again
    assert len(posts_again) == resumed_posts, posts_again
    for url in shares_again:
        doc = other_db.articles.find_one({"info_code": finews.info_code_of(url)})
        assert doc is not None and len(post_urls(doc["urls"])) >= 2, url
    print(
        f"whole crawl {whole_requests} requests; stopped after {len(first)},"
        f" {stored_half} articles stored; resumed: {len(second)} requests,"
        f" {len(posts_again)} posts fetched again (their share JSON was awaited),"
        f" {len(shares_again)} share answers of two-category articles"
    )
