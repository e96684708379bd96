"""Distributed mode against a real ``redis-server`` on loopback: the Redis side
(frontier scripts, shared share-JSON bookkeeping, dupefilter fingerprints) and
end-to-end crawls of a replica by several worker processes into a real
database server. Nothing mocked."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from pymongo import MongoClient
from scrapy import Request

from newscrawl.distributed.frontier import Frontier
from newscrawl.distributed.redis_server import RedisServer
from newscrawl.distributed.shares import SharedShares
from newscrawl.distributed.workers import run_workers, start_worker
from newscrawl.extract.post import PostFields
from newscrawl.extract.share import ShareFields
from newscrawl.replica.build import build_site
from newscrawl.replica.process import ReplicaProcess
from tests.crawling import differences, fetch_counts, load_expected, run_crawl

PREFIX = "newscrawl:finews"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server per test (a free loopback port, nothing saved)."""
    with RedisServer.start(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_server.url)
    try:
        yield conn
    finally:
        conn.close()


def poll(condition: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Wait until ``condition()`` is truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


# -- the Redis side -------------------------------------------------------------------


def test_redis_server_answers_on_loopback_and_stops(redis_server: RedisServer) -> None:
    conn = redis.Redis.from_url(redis_server.url)
    assert conn.ping()
    assert conn.config_get("bind")["bind"] == "127.0.0.1"
    assert conn.config_get("save")["save"] == ""
    conn.close()
    redis_server.stop()
    assert redis_server.proc.returncode is not None


def test_push_filters_duplicates_atomically_and_seeds_once(client: redis.Redis) -> None:
    frontier = Frontier(client, PREFIX)
    assert frontier.push(b"home", -0.0, "fp-home", seeder="w1") == 1
    assert frontier.push(b"home again", -0.0, "fp-home", seeder="w1") == 0  # duplicate
    assert frontier.push(b"feed", -0.0, "fp-feed", seeder="w2") == -1  # not the first seeder
    assert frontier.push(b"feed", -0.0, "fp-feed", seeder="w1") == 1
    assert not client.sismember(frontier.dupefilter_key, "fp-x")
    assert frontier.push(b"json", -20.0, None, seeder=None) == 1  # dont_filter: no fingerprint
    assert frontier.push(b"json", -20.0, None, seeder=None) == 1  # same bytes: one entry
    assert frontier.queued() == 3


def test_pop_takes_the_highest_priority_into_the_processing_hash(client: redis.Redis) -> None:
    frontier = Frontier(client, PREFIX)
    frontier.heartbeat("w1", 5, 0)
    for data, priority in ((b"category", 0), (b"share-json", 20), (b"post", 10)):
        frontier.push(data, -priority, data.decode(), None)
    assert frontier.pop("w1", "1") == b"share-json"
    assert frontier.pop("w1", "2") == b"post"
    assert client.hgetall(frontier.processing_key("w1")) == {
        b"1": b"-20\nshare-json",
        b"2": b"-10\npost",
    }
    assert client.hget(frontier.active_key, "w1") == b"2"
    frontier.finish("w1", 1, ["1"])  # "1" done for good; one request still in flight
    assert client.hkeys(frontier.processing_key("w1")) == [b"2"]
    assert frontier.snapshot().active == 1
    assert not frontier.snapshot().idle


def test_a_dead_workers_requests_go_back_to_the_queue(client: redis.Redis) -> None:
    frontier = Frontier(client, PREFIX)
    frontier.heartbeat("alive", 30, 0)
    frontier.heartbeat("doomed", 0.2, 0)
    frontier.push(b"a", -10.0, "a", None)
    frontier.push(b"b", -0.0, "b", None)
    assert frontier.pop("doomed", "7") == b"a"
    assert frontier.pop("doomed", "8") == b"b"
    first = frontier.snapshot()
    assert (first.queued, first.active, first.dead) == (0, 2, 0)  # doomed still beats
    snapshot = poll(lambda: (s := frontier.snapshot()).dead and s, 5, "the heartbeat to expire")
    assert (snapshot.dead, snapshot.recovered, snapshot.queued, snapshot.active) == (1, 2, 2, 0)
    assert not client.exists(frontier.processing_key("doomed"))
    assert client.smembers(frontier.workers_key) == {b"alive"}
    # scores kept: the higher priority comes out first again
    assert frontier.pop("alive", "1") == b"a"
    # a worker presumed dead that beats again re-registers with its in-flight count
    assert frontier.heartbeat("doomed", 30, 3) is True
    assert client.hget(frontier.active_key, "doomed") == b"3"


def test_the_last_worker_of_a_finished_crawl_deletes_its_keys(client: redis.Redis) -> None:
    frontier = Frontier(client, PREFIX)
    other = Frontier(client, "newscrawl:other")
    other.push(b"x", 0.0, "x", None)
    frontier.run_id("run-1")
    frontier.heartbeat("w1", 30, 0)
    frontier.heartbeat("w2", 30, 0)
    frontier.push(b"home", 0.0, "home", "w1")
    assert frontier.pop("w2", "1") == b"home"
    # w1 leaves while w2 still works: nothing is deleted
    assert not frontier.leave("w1", finished=True).cleaned
    assert frontier.run_id("run-2") == "run-1"
    # w2 leaves without finishing its request: it goes back to the queue, keys stay
    departure = frontier.leave("w2", finished=False)
    assert (departure.cleaned, departure.recovered) == (False, 1)
    assert frontier.queued() == 1
    frontier.heartbeat("w3", 30, 0)
    assert frontier.pop("w3", "1") == b"home"
    frontier.finish("w3", 0, ["1"])
    assert frontier.leave("w3", finished=True).cleaned
    assert client.keys(f"{PREFIX}:*") == []
    assert other.queued() == 1  # another crawl's keys are untouched
    assert frontier.run_id("run-2") == "run-2"  # the next crawl gets a new run


def _post(code: str, category: str) -> PostFields:
    return PostFields(
        post_id=code,
        info_code=code,
        kind="news",
        title="T",
        categories=[category],
        share_url=f"https://finews.zning.xyz/html_News/NewsShare.html?infoCode={code}",
    )


def test_shared_shares_release_every_waiting_post_whichever_worker_parsed_it(
    client: redis.Redis,
) -> None:
    worker_a, worker_b = SharedShares(client, PREFIX), SharedShares(client, PREFIX)
    code = "NW202202182281010830"
    assert worker_a.wait(code, _post(code, "a"), ["https://x/a.html"]) == (False, None)
    assert worker_b.wait(code, _post(code, "b"), ["https://x/b.html"]) == (False, None)
    answer = ShareFields(html="<p>full text</p>")
    share, waiting = worker_b.release(code, answer)  # the JSON was fetched by worker b
    assert share == answer
    assert [(fields.categories, urls) for fields, urls in waiting] == [
        (["a"], ["https://x/a.html"]),
        (["b"], ["https://x/b.html"]),
    ]
    # a post parsed afterwards gets the answer at once
    assert worker_a.wait(code, _post(code, "c"), ["https://x/c.html"]) == (True, answer)
    # the JSON handled again (its worker died): the same posts again, the first answer kept
    share, again = worker_a.release(code, ShareFields(html="<p>other</p>"))
    assert share == answer and len(again) == 2


def test_a_real_answer_replaces_a_recorded_failure(client: redis.Redis) -> None:
    shares = SharedShares(client, PREFIX)
    shares.wait("1", _post("1", "a"), ["u"])
    assert shares.release("1", None)[0] is None
    answer = ShareFields(html="<p>x</p>")
    assert shares.release("1", answer)[0] == answer
    assert shares.release("1", None)[0] == answer


def test_the_dupefilter_uses_canonical_fingerprints(redis_server: RedisServer) -> None:
    from scrapy.utils.test import get_crawler

    from newscrawl.distributed.dupefilter import DEDUPE_KEY, CanonicalRedisDupeFilter
    from newscrawl.spiders.finews import FinewsSpider

    settings = {
        "REDIS_URL": redis_server.url,
        "REQUEST_FINGERPRINTER_CLASS": "newscrawl.fingerprint.CanonicalFingerprinter",
    }
    crawler = get_crawler(FinewsSpider, settings_dict=settings)
    dupefilter = CanonicalRedisDupeFilter.from_crawler(crawler)
    assert dupefilter.key == "newscrawl:finews:dupefilter"
    post = "https://finews.withounder.com/dazhongribao/2022/02/18/NW202202182281010830.html"
    same = [
        post,
        post.replace("https://", "http://"),
        post.replace("finews.withounder.com", "finews.zning.me") + "?from=home",
    ]
    assert not dupefilter.request_seen(Request(same[0]))
    assert all(dupefilter.request_seen(Request(url)) for url in same[1:])
    by_key = [Request(f"https://finews.zning.xyz/x?id={i}", meta={DEDUPE_KEY: "k"}) for i in (1, 2)]
    assert not dupefilter.request_seen(by_key[0])
    assert dupefilter.request_seen(by_key[1])
    dupefilter.close("finished")  # shared: closing one worker keeps the set
    assert redis.Redis.from_url(redis_server.url).scard(dupefilter.key) == 2


def test_cli_without_a_reachable_redis_fails_at_once_with_the_reason(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    cmd = [sys.executable, "-m", "newscrawl", "crawl", "finews", "--distributed"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "needs a Redis: set REDIS_URL" in proc.stderr
    url = "redis://:s3cret@127.0.0.1:1/0"
    proc = subprocess.run(
        [*cmd, "--redis-url", url], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert "cannot reach Redis at redis://:***@127.0.0.1:1/0" in proc.stderr
    assert "s3cret" not in proc.stderr + proc.stdout


# -- crawls -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site_300(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated replica of 300 articles with every variation."""
    site = tmp_path_factory.mktemp("dist-site-300")
    build_site(site, articles=300, seed=20261129)
    return site


@pytest.fixture
def second_db(mongo_client: MongoClient[dict[str, Any]]) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        mongo_client.drop_database(name)


def _reachable(site: Path) -> dict[str, dict[str, Any]]:
    expected = load_expected(site / "expected.jsonl")
    return {key: doc for key, doc in expected.items() if doc.get("reachable", True)}


def _errors(output: str) -> str:
    """A crawl's ERROR lines (with what follows them) and its summary."""
    lines = output.splitlines()
    picked = [i for i, line in enumerate(lines) if " ERROR: " in line or "Traceback" in line]
    shown = [line for i in picked for line in lines[i : i + 8]]
    return "\n".join([*shown[:200], *lines[-25:]])


def _summary(stats: list[dict[str, Any]], name: str) -> int:
    return sum(int(s.get(name, 0)) for s in stats)


@pytest.mark.crawl
def test_three_workers_store_what_one_worker_stores_fetching_each_page_once(
    site_300: Path,
    mongo_settings: dict[str, Any],
    mongo_client: MongoClient[dict[str, Any]],
    mongo_db_name: str,
    second_db: str,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    reachable = _reachable(site_300)
    # one worker alone (plain Scrapy scheduler, no Redis)
    alone_dir = tmp_path / "alone"
    alone_dir.mkdir()
    with ReplicaProcess.start(site_300, access_log=tmp_path / "alone.jsonl") as replica:
        code, _, output = run_crawl(replica.proxy_url, mongo_settings, alone_dir)
    assert code == 0, _errors(output)
    alone = sorted(doc["_id"] for doc in mongo_client[mongo_db_name].articles.find())
    assert alone == sorted(reachable)

    settings = {**mongo_settings, "MONGO_DATABASE": second_db}
    with ReplicaProcess.start(site_300, access_log=tmp_path / "three.jsonl") as replica:
        result = run_workers(
            3, replica.proxy_url, workdir=tmp_path / "three", settings=settings,
            redis_url=redis_server.url,
        )  # fmt: skip
    assert result.exit_codes == [0, 0, 0], "\n".join(map(_errors, result.outputs))
    docs = list(mongo_client[second_db].articles.find())
    assert sorted(doc["_id"] for doc in docs) == alone
    assert differences(docs, reachable) == []
    # each article inserted once, by one worker, and never rewritten as a new version
    assert _summary(result.stats, "newscrawl/store/inserted") == len(alone)
    assert _summary(result.stats, "newscrawl/store/updated") == 0
    assert {doc["version"] for doc in docs} == {1}
    assert len({doc["last_run_id"] for doc in docs}) == 1  # one run, shared by the workers
    # its one run record adds up the three workers' parts
    (run,) = list(mongo_client[second_db].crawl_runs.find())
    assert run["_id"] == docs[0]["last_run_id"]
    assert len(run["workers"]) == 3
    assert run["pages_fetched"] == _summary(result.stats, "downloader/response_count")
    assert run["articles"]["new"] == len(alone)
    # each page fetched once across the three workers, and the same pages as alone
    three = fetch_counts(tmp_path / "three.jsonl")
    assert {url: n for url, n in three.items() if n > 1} == {}
    assert set(three) == set(fetch_counts(tmp_path / "alone.jsonl"))
    # every worker worked and stayed until the crawl was done; the last one cleaned up
    for stats in result.stats:
        assert stats["finish_reason"] == "finished"
        assert stats.get("newscrawl/distributed/popped", 0) > 0
        assert stats.get("log_count/ERROR", 0) == 0
    assert _summary(result.stats, "newscrawl/distributed/seeds_skipped") >= 2
    assert [s.get("newscrawl/distributed/cleaned") for s in result.stats].count(True) == 1
    assert redis.Redis.from_url(redis_server.url).keys("newscrawl:*") == []


@pytest.mark.crawl
def test_killing_one_of_three_workers_mid_crawl_loses_no_article(
    site_300: Path,
    mongo_settings: dict[str, Any],
    mongo_client: MongoClient[dict[str, Any]],
    mongo_db_name: str,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    reachable = _reachable(site_300)
    conn = redis.Redis.from_url(redis_server.url)
    settings: dict[str, Any] = {
        **mongo_settings,
        "REDIS_URL": redis_server.url,
        "NEWSCRAWL_ALLOWED_ADDRESSES": "127.0.0.1",
        "NEWSCRAWL_DISTRIBUTED_WORKER_TIMEOUT": 2,
    }
    # the victim keeps every article in its write buffer: what it did is lost with it
    victim_settings = {**settings, "MONGO_FLUSH_SECONDS": 600, "MONGO_BATCH_SIZE": 100_000}
    with ReplicaProcess.start(site_300, access_log=tmp_path / "access.jsonl") as replica:
        victim, _ = start_worker(0, replica.proxy_url, tmp_path, victim_settings)
        survivors = [start_worker(i, replica.proxy_url, tmp_path, settings) for i in (1, 2)]
        processing = poll(
            lambda: next(
                (k for k in conn.keys(f"{PREFIX}:processing:*") if f":{victim.pid}:" in k.decode()),
                None,
            ),
            60,
            "the victim to take requests",
        )
        held = poll(lambda: (n := conn.hlen(processing)) >= 30 and n, 60, "30 requests held")
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        codes = [proc.wait(300) for proc, _ in survivors]
    import json

    stats = [json.loads(path.read_text()) for _, path in survivors]
    logs = [(tmp_path / f"worker-{i}.log").read_text() for i in (1, 2)]
    assert codes == [0, 0], "\n".join(map(_errors, logs))
    docs = list(mongo_client[mongo_db_name].articles.find())
    assert sorted(doc["_id"] for doc in docs) == sorted(reachable)
    assert differences(docs, reachable) == []
    # the survivors found the dead worker and fetched its requests again
    assert _summary(stats, "newscrawl/distributed/dead_workers") >= 1  # (>1: a stalled survivor)
    assert _summary(stats, "newscrawl/distributed/recovered") >= held
    assert all(s["finish_reason"] == "finished" for s in stats)
    assert conn.keys("newscrawl:*") == []


@pytest.mark.crawl
def test_an_idle_worker_waits_for_a_busy_one_and_takes_over_when_it_dies(
    site_300: Path,
    mongo_settings: dict[str, Any],
    mongo_client: MongoClient[dict[str, Any]],
    mongo_db_name: str,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    """A worker whose queue is empty does not close while another worker has a
    request in flight (it could add more); when that one stops beating, its
    request is fetched by the idle worker, which then crawls everything."""
    from newscrawl.sites import finews
    from newscrawl.spiders.finews import FinewsSpider

    conn = redis.Redis.from_url(redis_server.url)
    frontier = Frontier(conn, PREFIX)
    spider = FinewsSpider()
    home = Request(finews.HOME_URL, callback=spider.parse)
    # another worker took the seed and is "working on it" for 4 s, then dies
    frontier.heartbeat("elsewhere", 4, 0)
    frontier.push(pickle.dumps(home.to_dict(spider=spider)), 0.0, "seed", "elsewhere")
    assert frontier.pop("elsewhere", "1") is not None
    started = time.monotonic()
    with ReplicaProcess.start(site_300, access_log=tmp_path / "access.jsonl") as replica:
        settings = {**mongo_settings, "NEWSCRAWL_DISTRIBUTED_WORKER_TIMEOUT": 2}
        result = run_workers(
            1, replica.proxy_url, workdir=tmp_path / "w", settings=settings,
            redis_url=redis_server.url,
        )  # fmt: skip
    assert result.exit_codes == [0], _errors(result.outputs[0])
    assert time.monotonic() - started >= 4
    stats = result.stats[0]
    assert stats["newscrawl/distributed/seeds_skipped"] >= 1  # the crawl was seeded already
    assert stats["newscrawl/distributed/dead_workers"] == 1
    assert stats["newscrawl/distributed/recovered"] == 1
    stored = sorted(doc["_id"] for doc in mongo_client[mongo_db_name].articles.find())
    assert stored == sorted(_reachable(site_300))


@pytest.mark.crawl
def test_three_workers_on_a_faulty_site_store_every_storable_article(
    mongo_settings: dict[str, Any],
    mongo_client: MongoClient[dict[str, Any]],
    mongo_db_name: str,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    """Error statuses, resets, slow answers, bad charsets, redirects and traps,
    with retries parked for their backoff: nothing is lost between workers."""
    site = tmp_path / "site"
    build_site(
        site,
        articles=200,
        seed=20261130,
        faults=0.15,
        fault_options={"slow_seconds": 3.5, "enormous_bytes": 3 << 20, "bomb_bytes": 64 << 20},
    )
    settings = {
        **mongo_settings,
        "DOWNLOAD_TIMEOUT": 1.5,
        "DOWNLOAD_MAXSIZE": 2 << 20,
        "RETRY_BACKOFF_BASE": 0.1,
        "RETRY_BACKOFF_MAX": 0.4,
        "REDIRECT_MAX_TIMES": 6,
    }
    with ReplicaProcess.start(site, access_log=tmp_path / "access.jsonl") as replica:
        result = run_workers(
            3, replica.proxy_url, workdir=tmp_path / "w", settings=settings,
            redis_url=redis_server.url,
        )  # fmt: skip
    assert result.exit_codes == [0, 0, 0], "\n".join(map(_errors, result.outputs))
    expected = load_expected(site / "expected.jsonl")
    storable = {key: doc for key, doc in expected.items() if doc["storable"]}
    assert len(storable) < len(expected)  # the plan really loses some
    docs = list(mongo_client[mongo_db_name].articles.find())
    assert sorted(doc["_id"] for doc in docs) == sorted(storable)
    assert differences(docs, storable) == []
    assert _summary(result.stats, "retry/count") > 0
    assert _summary(result.stats, "newscrawl/retry/parked") > 0  # held outside the queue
    assert all(s.get("log_count/ERROR", 0) == 0 for s in result.stats)
