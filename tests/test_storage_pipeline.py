"""MongoPipeline driven by a real Scrapy Crawler.

Each crawl runs in a child process (a Twisted reactor runs once per process,
and other tests may install a different one); the child runs one or more
crawls of a trivial spider that yields the given items, and reports each
crawl's stats and the commands its MongoDB client sent (counted by a pymongo
CommandListener).
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from scrapy import Spider

from newscrawl.pipelines.mongo import STORE_UNAVAILABLE
from newscrawl.storage.embedded import EmbeddedMongo

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = "newscrawl.pipelines.mongo.MongoPipeline"


# -- the child process --------------------------------------------------------


class ItemsSpider(Spider):
    """Yields the items it is given (``published_at`` as ISO text, made a
    datetime when it is one), no requests.
    With ``wait_for`` set, after the first item it waits until that article is
    in the database (or 10 s) before yielding the rest; with ``kill_pid`` set,
    it then kills that process (the database server); with ``linger``, it
    stays busy that many seconds after the last item; with ``pace``, it
    waits that many seconds between items; with ``until`` (like
    ``wait_for``), after the last item it waits until that article is in the
    database (or 90 s), whatever the machine's speed."""

    name = "items"
    items: list[dict[str, Any]]
    wait_for: dict[str, str] | None = None
    kill_pid: int | None = None
    linger: float = 0
    pace: float = 0
    until: dict[str, str] | None = None

    async def start(self) -> AsyncIterator[Any]:
        from scrapy.utils.asyncio import run_in_thread, sleep

        for index, item in enumerate(self.items):
            if index and self.pace:
                await sleep(self.pace)
            if isinstance(item.get("published_at"), str):
                item = {**item, "published_at": _as_datetime(item["published_at"])}
            yield item
            if index == 0 and self.wait_for:
                self.seen_before_close = await run_in_thread(_wait_for_doc, **self.wait_for)
            if index == 0 and self.kill_pid:
                os.kill(self.kill_pid, signal.SIGKILL)
        if self.linger:
            await sleep(self.linger)  # keeps the crawl busy until something closes it
        if self.until:
            await run_in_thread(_wait_for_doc, **self.until, timeout=90)


def _as_datetime(text: str) -> datetime | str:
    """The datetime the ISO text says, or the text (a hostile item)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return text


def _wait_for_doc(uri: str, database: str, key: str, timeout: float = 10) -> bool:
    import time

    from pymongo import MongoClient

    client: Any = MongoClient(uri)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if client[database].articles.find_one({"_id": key}) is not None:
                return True
            time.sleep(0.02)
        return False
    finally:
        client.close()


class CommandCounter(monitoring.CommandListener):
    """Counts (command name, collection) of every command sent."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        self.counts[f"{event.command_name}:{target}"] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def child_main() -> None:
    """Run the crawls described on stdin, print their results as JSON."""
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    spec = json.load(sys.stdin)
    mode = spec.get("reactor", "asyncio")
    if mode == "asyncio":
        from scrapy.utils.reactor import install_reactor

        install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    elif mode == "select":
        from twisted.internet import selectreactor

        selectreactor.install()
    counter = CommandCounter()
    monitoring.register(counter)
    results: list[dict[str, Any]] = []

    async def crawl_all() -> None:
        from scrapy.utils.test import get_crawler

        for run in spec["runs"]:
            settings = {
                "ITEM_PIPELINES": {PIPELINE: 900},
                "LOG_LEVEL": "INFO",
                **spec["settings"],
                **run.get("settings", {}),
            }
            crawler = get_crawler(ItemsSpider, settings)
            counter.counts.clear()
            await crawler.crawl_async(
                items=run["items"],
                wait_for=run.get("wait_for"),
                kill_pid=run.get("kill_pid"),
                linger=run.get("linger", 0),
                pace=run.get("pace", 0),
                until=run.get("until"),
            )
            assert crawler.stats is not None
            results.append(
                {
                    "stats": crawler.stats.get_stats(),
                    "commands": dict(counter.counts),
                    "seen_before_close": getattr(crawler.spider, "seen_before_close", None),
                }
            )

    if mode == "reactorless":
        import asyncio

        asyncio.run(crawl_all())
    else:
        from scrapy.utils.defer import deferred_from_coro
        from twisted.internet import reactor

        failures: list[Any] = []

        def start() -> None:
            done = deferred_from_coro(crawl_all())
            done.addErrback(failures.append)
            done.addBoth(lambda _: reactor.stop())  # type: ignore[attr-defined]

        reactor.callWhenRunning(start)  # type: ignore[attr-defined]
        reactor.run()  # type: ignore[attr-defined]
        if failures:
            failures[0].raiseException()
    print("RESULTS " + json.dumps(results, default=str))


# -- helpers for the tests ------------------------------------------------------


def crawl(
    settings: dict[str, Any], runs: list[dict[str, Any]], reactor: str = "asyncio"
) -> list[dict[str, Any]]:
    """Run the crawls in a child process; one result per run."""
    spec = {"settings": settings, "runs": runs, "reactor": reactor}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MONGO_URI", None)
    proc = subprocess.run(
        [sys.executable, "-c", "from tests.test_storage_pipeline import child_main; child_main()"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    assert proc.returncode == 0 and lines, (
        f"child failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    )
    results: list[dict[str, Any]] = json.loads(lines[-1][len("RESULTS ") :])
    for result in results:
        result["log"] = proc.stderr
    return results


def article(n: int, **fields: Any) -> dict[str, Any]:
    """A valid item (as JSON) for article number ``n``."""
    code = f"NW{202401010000000000 + n}"
    url = f"https://finews.withounder.com/dazhongribao/2024/01/01/{code}.html"
    item: dict[str, Any] = {
        "key": f"finews:{code}",
        "site": "finews",
        "kind": "news",
        "info_code": code,
        "url": url,
        "urls": [url],
        "title": f"标题 {n}",
        "published_at": datetime(2024, 1, 1, 2, n % 60, tzinfo=UTC).isoformat(),
        "published_at_source": "page",
        "derived_fields": [],
        "categories": ["dazhongribao"],
        "tags": ["大众日报新闻"],
        "source": "大众日报",
        "authors": ["张三"],
        "correspondents": [],
        "body": f"第一段 {n}。\n第二段。",
        "summary": f"第一段 {n}。",
        "images": [{"src": f"https://img.example/{n}.jpg", "caption": None}],
        "share_url": None,
        "origin_url": None,
        "outlinks": [],
    }
    item.update(fields)
    return item


def store_stats(result: dict[str, Any]) -> dict[str, Any]:
    prefix = "newscrawl/store/"
    return {k[len(prefix) :]: v for k, v in result["stats"].items() if k.startswith(prefix)}


# -- tests ----------------------------------------------------------------------


def test_two_runs_insert_merge_unchanged_update(mongo_settings, mongo_db):
    first = [
        article(1),
        article(2),
        article(3),
        # article 1 again through another category page: merged in the same run
        article(
            1,
            urls=["https://finews.withounder.com/x/2024/01/01/NW202401010000000001.html"],
            categories=["other"],
            tags=["其他新闻"],
        ),
    ]
    second = [
        article(1),  # same content: unchanged
        article(2, body="第一段 2。\n第二段，改过了。"),  # changed: updated to version 2
        article(4),  # new
    ]
    run1, run2 = crawl(
        {**mongo_settings, "MONGO_BATCH_SIZE": 2},
        [
            {"items": first, "settings": {"NEWSCRAWL_RUN_ID": "run-1"}},
            {"items": second, "settings": {"NEWSCRAWL_RUN_ID": "run-2"}},
        ],
    )

    s1, s2 = store_stats(run1), store_stats(run2)
    assert run1["stats"]["finish_reason"] == "finished"
    assert {k: s1.get(k, 0) for k in ("inserted", "merged", "unchanged", "updated")} == {
        "inserted": 3,
        "merged": 1,
        "unchanged": 0,
        "updated": 0,
    }
    assert {k: s2.get(k, 0) for k in ("inserted", "merged", "unchanged", "updated")} == {
        "inserted": 1,
        "merged": 0,
        "unchanged": 1,
        "updated": 1,
    }
    assert s1.get("write_errors", 0) == s2.get("write_errors", 0) == 0
    assert s1["run_id"] == "run-1" and s1["database"] == mongo_settings["MONGO_DATABASE"]
    assert s1["uri"].startswith("mongodb://") and s1["embedded"] is False
    assert s2["archived"] == 1

    docs = {doc["_id"]: doc for doc in mongo_db.articles.find()}
    assert len(docs) == 4
    one = docs["finews:NW202401010000000001"]
    assert one["version"] == 1 and one["last_run_id"] == "run-2"
    assert one["urls"] == [
        "https://finews.withounder.com/dazhongribao/2024/01/01/NW202401010000000001.html",
        "https://finews.withounder.com/x/2024/01/01/NW202401010000000001.html",
    ]
    assert one["categories"] == ["dazhongribao", "other"]
    assert one["tags"] == ["大众日报新闻", "其他新闻"]
    assert one["first_seen_at"] < one["last_seen_at"]
    # run 1 added a URL (a change), run 2 only saw it again (not one)
    assert one["first_seen_at"] <= one["updated_at"] < one["last_seen_at"]
    assert one["published_at"] == datetime(2024, 1, 1, 2, 1, tzinfo=UTC)

    two = docs["finews:NW202401010000000002"]
    assert two["version"] == 2 and two["body"].endswith("改过了。")
    assert two["updated_at"] > two["first_seen_at"]
    archived = list(mongo_db.article_versions.find({"article_id": two["_id"]}))
    assert len(archived) == 1
    assert archived[0]["version"] == 1 and archived[0]["body"] == "第一段 2。\n第二段。"
    assert archived[0]["last_run_id"] == "run-1"

    assert docs["finews:NW202401010000000003"]["last_run_id"] == "run-1"
    assert docs["finews:NW202401010000000004"]["version"] == 1


@pytest.mark.parametrize(("items", "batch"), [(25, 10), (7, 7), (1, 100)])
def test_batches_become_one_bulk_write_each(mongo_settings, mongo_db, items, batch):
    (result,) = crawl(
        {**mongo_settings, "MONGO_BATCH_SIZE": batch, "MONGO_FLUSH_SECONDS": 60},
        [{"items": [article(n) for n in range(items)]}],
    )
    expected = math.ceil(items / batch)
    # all new: inserted (no upserts), one read and one write per batch
    assert result["commands"].get("insert:articles") == expected
    assert result["commands"].get("update:articles") is None
    assert result["commands"].get("find:articles") == expected
    assert store_stats(result)["batches"] == expected
    assert store_stats(result)["inserted"] == items
    assert mongo_db.articles.count_documents({}) == items


def test_flush_by_age_writes_before_close(mongo_settings, mongo_uri):
    first = article(1)
    (result,) = crawl(
        {**mongo_settings, "MONGO_BATCH_SIZE": 100, "MONGO_FLUSH_SECONDS": 0.2},
        [
            {
                "items": [first, article(2)],
                "wait_for": {
                    "uri": mongo_uri,
                    "database": mongo_settings["MONGO_DATABASE"],
                    "key": first["key"],
                },
            }
        ],
    )
    assert result["seen_before_close"] is True
    assert store_stats(result)["inserted"] == 2
    assert store_stats(result)["batches"] == 2


def test_small_queue_backpressure_keeps_every_item(mongo_settings, mongo_db):
    (result,) = crawl(
        {**mongo_settings, "MONGO_BATCH_SIZE": 1, "MONGO_MAX_PENDING_BATCHES": 1},
        [{"items": [article(n) for n in range(40)]}],
    )
    assert store_stats(result)["inserted"] == 40
    assert store_stats(result)["batches"] == 40
    assert mongo_db.articles.count_documents({}) == 40


@pytest.mark.parametrize("reactor", ["select", "reactorless"])
def test_other_event_loops(mongo_settings, mongo_db, reactor):
    (result,) = crawl(
        {**mongo_settings, "MONGO_BATCH_SIZE": 3},
        [{"items": [article(n) for n in range(5)]}],
        reactor=reactor,
    )
    assert store_stats(result)["inserted"] == 5
    assert mongo_db.articles.count_documents({}) == 5


def test_refused_items_go_to_articles_rejected_with_their_reason(mongo_settings, mongo_db):
    bad = article(2, kind="rumour")  # not in the schema's enum: refused before the server
    # another article claiming article 1's info_code: the server's unique index refuses it
    clash = article(3, info_code="NW202401010000000001")
    (result,) = crawl({**mongo_settings}, [{"items": [article(1), bad, clash, article(4)]}])
    stats = store_stats(result)
    assert stats["inserted"] == 2
    assert stats.get("write_errors", 0) == 0  # nothing lost: refused and recorded
    assert stats["rejected/store"] == 1 and stats["rejected/server"] == 1
    assert "Rejected article finews:NW202401010000000002 (store)" in result["log"]
    assert "The database refused article finews:NW202401010000000003" in result["log"]
    assert mongo_db.articles.count_documents({}) == 2
    rejected = {doc["article_id"]: doc for doc in mongo_db.articles_rejected.find()}
    assert set(rejected) == {"finews:NW202401010000000002", "finews:NW202401010000000003"}
    store = rejected["finews:NW202401010000000002"]
    assert store["stage"] == "store"
    assert store["reason"] == "kind: 'rumour' is not one of ['news', 'notice']"
    assert store["url"] == bad["url"] and store["document"]["kind"] == "rumour"
    server = rejected["finews:NW202401010000000003"]
    assert server["stage"] == "server" and server["error"] == "11000"
    assert server["run_id"] == stats["run_id"]


def test_item_without_key_is_dropped_and_recorded(mongo_settings, mongo_db):
    (result,) = crawl({**mongo_settings}, [{"items": [article(1, key=""), article(2)]}])
    assert result["stats"]["item_dropped_reasons_count/UnstorableItem"] == 1
    assert store_stats(result)["inserted"] == 1
    (rejected,) = mongo_db.articles_rejected.find()
    assert rejected["stage"] == "store" and rejected["error"] == "UnstorableItem"
    assert rejected["article_id"] is None and rejected["url"] == article(1)["url"]
    assert "article has no key" in rejected["reason"]


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that is bound (so nobody else gets it) but not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_unreachable_store_closes_the_crawl(mongo_settings, refused_port):
    uri = f"mongodb://crawler:hunter2@127.0.0.1:{refused_port}/"
    (result,) = crawl(
        {**mongo_settings, "MONGO_URI": uri, "MONGO_CONNECT_TIMEOUT": 1},
        [{"items": [article(1)]}],
    )
    assert result["stats"]["finish_reason"] == STORE_UNAVAILABLE
    error = store_stats(result)["error"]
    assert f"mongodb://crawler:***@127.0.0.1:{refused_port}/" in error
    assert "hunter2" not in error and "hunter2" not in result["log"]
    assert "Article store unavailable" in result["log"]
    assert "item_scraped_count" not in result["stats"]


def test_disabled_pipeline_is_not_configured(mongo_settings, mongo_db):
    (result,) = crawl({**mongo_settings, "MONGO_ENABLED": False}, [{"items": [article(1)]}])
    assert result["stats"]["item_scraped_count"] == 1
    assert not store_stats(result)
    assert mongo_settings["MONGO_DATABASE"] not in mongo_db.client.list_database_names()


def test_database_lost_for_good_keeps_articles_in_the_journal_for_the_next_crawl(tmp_path):
    """The server dies after the first article and stays down: the crawl
    finishes, the rest waits in the journal; the next crawl, once the server
    is back where it was, replays it first. Every article stored once."""
    data_dir = tmp_path / ".newscrawl"
    settings = {
        "MONGO_DATABASE": "lost",
        "MONGO_CONNECT_TIMEOUT": 1,
        "MONGO_BATCH_SIZE": 1,
        "MONGO_RETRY_BACKOFF": 0.05,
        "MONGO_RECONNECT_SECONDS": 0.5,
        "NEWSCRAWL_DATA_DIR": str(data_dir),
        # the server is SIGKILLed: only journaled (j) writes survive that
        "MONGO_WRITE_CONCERN_J": True,
    }
    with EmbeddedMongo(tmp_path / "mongo") as server:
        uri, port = server.uri, server.port
        assert uri is not None and server.pid is not None
        first = article(1)
        (lost,) = crawl(
            {**settings, "MONGO_URI": uri},
            [
                {
                    "items": [first, article(2), article(3)],
                    "kill_pid": server.pid,
                    "linger": 2,
                    "wait_for": {"uri": uri, "database": "lost", "key": first["key"]},
                }
            ],
        )
    stats = store_stats(lost)
    assert lost["stats"]["finish_reason"] == "finished"
    assert stats["inserted"] == 1
    assert stats["journaled"] == 2 and stats["journal_pending"] == 2
    assert stats["outages"] == 1 and stats.get("write_errors", 0) == 0
    assert f"Cannot write to MongoDB at {uri} (" in lost["log"]
    assert "the next crawl on this database replays them" in lost["log"]
    journal = list((data_dir / "journal").glob("*/*.jsonl"))
    assert len(journal) == 1

    with EmbeddedMongo(tmp_path / "mongo", port=port) as server:
        assert server.uri == uri
        (after,) = crawl({**settings, "MONGO_URI": uri}, [{"items": [article(4)]}])
        client: Any = MongoClient(uri, tz_aware=True)
        try:
            keys = sorted(doc["_id"] for doc in client.lost.articles.find())
        finally:
            client.close()
    stats = store_stats(after)
    assert stats["replayed"] == 2 and stats["inserted"] == 1 + 2
    assert stats["journal_pending"] == 0
    assert keys == [article(n)["key"] for n in range(1, 5)]
    assert not list((data_dir / "journal").glob("*/*.jsonl"))
