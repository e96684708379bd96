"""Bad networks, traps and boundaries, end to end: real crawls of replicas with
fault plans, over real HTTP(S) through the replica proxy on loopback, into a
real MongoDB-wire server. Nothing mocked.

About errors in the log: a URL that fails for good is an expected outcome of
crawling an unreliable site, and it is accounted for (the run record lists it
with its reason), so giving up logs a WARNING (``RETRY_GIVE_UP_LOG_LEVEL``) and
the crawl must log no ERROR at all: ERROR is kept for what loses data without
an account (a failed write, a bug), and the CLI exits 1 on any.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pymongo import MongoClient

from newscrawl.replica.build import build_site, build_site_from_posts
from newscrawl.replica.faults import STATUS, Fault, FaultPlan, share_json_url, url_key
from newscrawl.replica.posts import load_posts, sample_posts_dir
from newscrawl.replica.process import ReplicaProcess
from newscrawl.replica.share import share_code
from newscrawl.sites import canonical_url
from tests.crawling import differences, load_expected, run_crawl

pytestmark = pytest.mark.crawl

ARTICLES = 500
SEED = 20261130
RATE = 0.15  # planned; the test checks that at least 10 % of the fetched URLs were faulty
CONTACT = "mailto:crawl-tests@example.org"
TIMEOUT = 1.5  # download timeout; slow faults answer after SLOW seconds
SLOW = 3.5
MAXSIZE = 2 << 20
TRAP_CHAIN = 4
REDIRECT_MAX = 6
#: short timeouts and backoffs keep the crawl quick; the rest are the project's settings
SETTINGS: dict[str, Any] = {
    "DOWNLOAD_TIMEOUT": TIMEOUT,
    "DOWNLOAD_MAXSIZE": MAXSIZE,
    "RETRY_BACKOFF_BASE": 0.1,
    "RETRY_BACKOFF_MAX": 0.4,
    "REDIRECT_MAX_TIMES": REDIRECT_MAX,
    "NEWSCRAWL_TRAP_CHAIN": TRAP_CHAIN,
    "NEWSCRAWL_CONTACT": CONTACT,
}
MAIN = "finews.withounder.com"
REPLICA_HOSTS = {MAIN, "finews.zning.me", "finews.zning.xyz", "choicewzp1.eastmoney.com"}


@dataclass
class Crawl:
    site: Path
    code: int
    stats: dict[str, Any]
    output: str
    docs: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    access: list[dict[str, Any]]
    plan: FaultPlan


def read_access(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def fetched(access: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Requests for pages (no CONNECT, no robots.txt)."""
    return [r for r in access if r["method"] != "CONNECT" and not r["url"].endswith("/robots.txt")]


@pytest.fixture(scope="module")
def database(mongo_client: MongoClient[dict[str, Any]]) -> Iterator[str]:
    name = f"test_faults_{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        mongo_client.drop_database(name)


@pytest.fixture(scope="module")
def crawl(
    tmp_path_factory: pytest.TempPathFactory,
    mongo_uri: str,
    mongo_client: MongoClient[dict[str, Any]],
    database: str,
) -> Crawl:
    """One crawl of a 500-article replica with every fault (the tests below read it)."""
    site = tmp_path_factory.mktemp("faulty-site") / "site"
    build_site(
        site,
        articles=ARTICLES,
        seed=SEED,
        faults=RATE,
        fault_options={"slow_seconds": SLOW, "enormous_bytes": 3 << 20, "bomb_bytes": 64 << 20},
    )
    workdir = tmp_path_factory.mktemp("faulty-crawl")
    settings = {
        **SETTINGS,
        "MONGO_URI": mongo_uri,
        "MONGO_DATABASE": database,
        "NEWSCRAWL_DATA_DIR": str(workdir / ".newscrawl"),
    }
    with ReplicaProcess.start(site, access_log=site / "access.jsonl") as replica:
        code, stats, output = run_crawl(replica.proxy_url, settings, workdir, timeout=300)
    db = mongo_client[database]
    plan = FaultPlan.load(site)
    assert plan is not None
    return Crawl(
        site=site,
        code=code,
        stats=stats,
        output=output,
        docs=list(db.articles.find()),
        runs=list(db.crawl_runs.find()),
        access=read_access(site / "access.jsonl"),
        plan=plan,
    )


def test_every_storable_article_is_stored_once_and_right(crawl: Crawl) -> None:
    assert crawl.code == 0, crawl.output[-3000:]
    expected = load_expected(crawl.site / "expected.jsonl")
    storable = {key: doc for key, doc in expected.items() if doc["storable"]}
    lost = [key for key, doc in expected.items() if doc["reachable"] and not doc["storable"]]
    assert len(storable) >= 450 and len(lost) >= 15
    stored = [doc["_id"] for doc in crawl.docs]
    assert len(stored) == len(set(stored))
    assert sorted(stored) == sorted(storable)
    # every field right, re-encoded pages and lying charsets included
    assert differences(crawl.docs, storable) == []
    encoded = {f.article for f in crawl.plan.faults if f.kind == "charset"}
    assert len(encoded) >= 8 and encoded <= set(stored)
    urls = [doc["url"] for doc in crawl.docs]
    assert len(urls) == len(set(urls))
    assert crawl.stats["newscrawl/store/inserted"] == len(storable)


def test_no_unhandled_errors(crawl: Crawl) -> None:
    assert crawl.stats["finish_reason"] == "finished"
    assert crawl.stats.get("log_count/ERROR", 0) == 0, re.findall(r".*ERROR.*", crawl.output)
    assert not [key for key in crawl.stats if key.startswith("spider_exceptions")]
    assert "Traceback" not in crawl.output
    # giving up is a warning, and the retries really happened, with backoff
    assert "WARNING: Gave up retrying" in crawl.output
    assert crawl.stats["retry/count"] >= 60
    # each retry waited its backoff parked (one whose wait had passed while the
    # reactor was busy, e.g. decompressing the gzip bomb, goes at once)
    assert crawl.stats["newscrawl/retry/parked"] >= 0.9 * crawl.stats["retry/count"]
    assert not any(key.startswith("item_dropped_reasons_count/") for key in crawl.stats)


def test_the_run_record_lists_every_url_that_failed_for_good(crawl: Crawl) -> None:
    assert len(crawl.runs) == 1
    run = crawl.runs[0]
    assert run["_id"] == crawl.stats["newscrawl/store/run_id"]
    assert run["site"] == "finews" and run["finish_reason"] == "finished"
    assert isinstance(run["started_at"], datetime) and run["finished_at"] > run["started_at"]
    assert run["articles"]["new"] == crawl.stats["newscrawl/store/inserted"]
    assert run["pages_fetched"] == crawl.stats["downloader/response_count"]
    assert run["errors"] == 0 and run["failed_urls_truncated"] == 0
    assert run["user_agent"].startswith("newscrawl/") and CONTACT in run["user_agent"]

    failed = run["failed_urls"]
    assert run["failed_count"] == len(failed)
    got = {canonical_url(f["url"]): f["reason"] for f in failed}
    assert len(got) == len(failed)
    by_url = {canonical_url(e["url"]): e["reason"] for e in crawl.plan.expect_failed if "url" in e}
    patterns = [e for e in crawl.plan.expect_failed if "pattern" in e]
    trapped = {url: reason for url, reason in got.items() if url not in by_url}
    # every planned failure, with its reason; and nothing else but the traps' cut points
    assert {url: got.get(url) for url in by_url} == by_url
    for expect in patterns:
        matched = [url for url in trapped if re.search(expect["pattern"], url)]
        assert len(matched) == 1, (expect, trapped)
        assert trapped[matched[0]] == expect["reason"]
    assert len(trapped) == len(patterns), trapped
    for entry in failed:
        assert entry["attempts"] >= 1 and isinstance(entry["retry"], bool) and entry["detail"]
    retried = {f["reason"] for f in failed if f["retry"]}
    assert {"http_503", "timeout", "connection_lost"} <= retried
    assert not retried & {"robots_txt", "offsite", "trap", "redirect_loop", "http_404"}
    assert max(f["attempts"] for f in failed if f["reason"] == "http_503") == 4


def test_at_least_a_tenth_of_the_urls_were_faulty(crawl: Crawl) -> None:
    urls = {canonical_url(r["url"]) for r in fetched(crawl.access)}
    faulty = {r["url"] for r in fetched(crawl.access) if r.get("fault")}
    faulty_pages = {canonical_url(url) for url in faulty}
    assert len(faulty_pages) >= 0.10 * len(urls), (len(faulty_pages), len(urls))
    kinds = {r["fault"].split(":")[0] for r in crawl.access if r.get("fault")}
    assert kinds >= {"status", "reset", "charset", "gone", "soft_404", "empty", "truncated"}
    assert kinds >= {"invalid_json", "enormous", "gzip_bomb", "redirect_loop", "trap"}


def test_traps_and_boundaries_hold(crawl: Crawl) -> None:
    paths = Counter(urlsplit(r["url"]).path for r in fetched(crawl.access))
    pagination = [p for p in paths if re.fullmatch(r"/page\d+/", p)]
    calendar = [p for p in paths if p.startswith("/calendar/")]
    assert 1 <= len(pagination) <= TRAP_CHAIN and 1 <= len(calendar) <= TRAP_CHAIN
    hops = sum(n for p, n in paths.items() if p.endswith("/hop.html"))
    assert hops == REDIRECT_MAX + 1
    assert not [p for p in paths if p.startswith("/private/")]  # robots.txt said no
    hosts = {urlsplit(r["url"]).hostname for r in fetched(crawl.access)}
    assert hosts <= REPLICA_HOSTS  # origin links and the offsite redirect: never fetched
    assert crawl.stats["newscrawl/links/offsite"] > 0
    # a query string never makes a new page: each page once, plus the retries its faults cause
    faulty = {url_key(f.url) for f in crawl.plan.faults}
    counts = Counter(canonical_url(r["url"]) for r in fetched(crawl.access))
    again = {
        url: n
        for url, n in counts.items()
        if n > 1 and url_key(url) not in faulty and not url.endswith("/hop.html")
    }
    assert again == {}


def test_politeness(crawl: Crawl) -> None:
    robots = {urlsplit(r["url"]).hostname for r in crawl.access if r["url"].endswith("/robots.txt")}
    assert {MAIN, "finews.zning.xyz"} <= robots
    agents = {r["agent"] for r in crawl.access if r["method"] == "GET"}
    assert agents == {f"newscrawl/0.1 (+{CONTACT})"}
    from newscrawl import settings

    assert settings.ROBOTSTXT_OBEY and settings.AUTOTHROTTLE_ENABLED
    assert 1 <= settings.CONCURRENT_REQUESTS_PER_DOMAIN <= 8
    assert settings.AUTOTHROTTLE_TARGET_CONCURRENCY <= settings.CONCURRENT_REQUESTS_PER_DOMAIN
    assert settings.CONCURRENT_REQUESTS > settings.CONCURRENT_REQUESTS_PER_DOMAIN
    assert "{contact}" in settings.USER_AGENT and settings.NEWSCRAWL_CONTACT


# -- other crawls --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("small-site")
    build_site_from_posts(sample_posts_dir(), site)
    return site


def test_the_loopback_proxy_is_refused_unless_allowlisted(
    small_site: Path,
    mongo_settings: dict[str, Any],
    mongo_client: MongoClient[dict[str, Any]],
    tmp_path: Path,
) -> None:
    access = tmp_path / "access.jsonl"
    settings = {**mongo_settings, "NEWSCRAWL_ALLOWED_ADDRESSES": ""}
    with ReplicaProcess.start(small_site, access_log=access) as replica:
        code, stats, output = run_crawl(replica.proxy_url, settings, tmp_path, timeout=120)
    assert code == 0, output[-3000:]
    assert stats.get("log_count/ERROR", 0) == 0
    assert not access.exists() or read_access(access) == []  # nothing reached the proxy
    assert stats.get("item_scraped_count", 0) == 0
    assert stats["newscrawl/boundary/private_address"] >= 1
    run = mongo_client[mongo_settings["MONGO_DATABASE"]].crawl_runs.find_one()
    assert run is not None
    failed = {f["url"]: f for f in run["failed_urls"]}
    assert f"https://{MAIN}/" in failed
    assert {f["reason"] for f in failed.values()} == {"private_address"}
    assert "127.0.0.1 is a loopback address" in failed[f"https://{MAIN}/"]["detail"]


def test_backoff_waits_hold_no_download_slot(
    tmp_path: Path, mongo_settings: dict[str, Any], mongo_client: MongoClient[dict[str, Any]]
) -> None:
    """Every share JSON fails twice (the share host is bad), with waits of about
    1 s then 2 s. If the waits held download slots (2 per host, 4 in all here),
    200 share JSON would take minutes; parked outside the downloader they take
    the longest wait, and the main host goes on meanwhile."""
    site = tmp_path / "site"
    build_site(site, articles=300, seed=3)
    posts = load_posts(site / "posts")
    codes = sorted({code for post in posts if (code := share_code(post.body))})
    plan = FaultPlan(
        rate=0.0,
        faults=[Fault(share_json_url(code), STATUS, status=503, times=2) for code in codes],
        traps=False,
        robots="",
    )
    plan.save(site)
    settings = {
        **mongo_settings,
        "CONCURRENT_REQUESTS": 4,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 2,
        "RETRY_BACKOFF_BASE": 1.0,
        "RETRY_BACKOFF_JITTER": 0.2,
        "AUTOTHROTTLE_ENABLED": False,
    }
    access = tmp_path / "access.jsonl"
    with ReplicaProcess.start(site, access_log=access) as replica:
        code, stats, output = run_crawl(replica.proxy_url, settings, tmp_path, timeout=300)
    assert code == 0, output[-3000:]
    assert stats.get("log_count/ERROR", 0) == 0
    records = read_access(access)
    shares = {r["url"].split("id=")[1] for r in records if "GetNewsText" in r["url"]}
    assert len(shares) >= 150
    assert stats["retry/count"] == 2 * len(shares)
    assert stats["newscrawl/retry/parked"] >= 0.9 * stats["retry/count"]
    waited = stats["newscrawl/retry/backoff_ms"] / 1000
    assert waited > 1.5 * len(shares)  # seconds of backoff in all (~3 s per share JSON) ...
    assert stats["elapsed_time_seconds"] < 60  # ... spent side by side, not in download slots
    expected = load_expected(site / "expected.jsonl")
    reachable = {key for key, doc in expected.items() if doc["reachable"]}
    stored = {doc["_id"] for doc in mongo_client[mongo_settings["MONGO_DATABASE"]].articles.find()}
    assert stored == reachable
    # while share JSON waited for their retries, the main host was served
    first_retry = next(
        i
        for i, r in enumerate(records)
        if "GetNewsText" in r["url"] and r["status"] == 503 and r.get("fault")
    )
    later_main = [r for r in records[first_retry:] if urlsplit(r["url"]).hostname == MAIN]
    assert len(later_main) > 50


SPIDER = """
import json
from pathlib import Path

from scrapy import Request, Spider

from newscrawl import runs


class LocalSpider(Spider):
    name = "local"
    allowed_domains = ["localhost"]

    def __init__(self, url: str, out: str, **kwargs):
        super().__init__(**kwargs)
        self.url, self.out = url, Path(out)

    async def start(self):
        yield Request(self.url, callback=self.parse, errback=self.failed)

    def parse(self, response):
        self.out.write_text(json.dumps({"status": response.status}))

    def failed(self, failure):
        reason, detail = runs.failure_reason(failure.value)
        self.out.write_text(json.dumps({"reason": reason, "detail": detail}))
"""


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("allowed", ["", "127.0.0.0/8"])
def test_a_host_that_resolves_to_loopback_is_refused_unless_allowlisted(
    allowed: str, tmp_path: Path
) -> None:
    """No proxy: the host name is resolved (on the crawler's resolver, off the
    reactor) and its address checked."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        (tmp_path / "local_spider.py").write_text(SPIDER)
        out = tmp_path / "out.json"
        url = f"http://localhost:{server.server_address[1]}/"
        cmd = [sys.executable, "-m", "scrapy", "runspider", str(tmp_path / "local_spider.py")]
        cmd += ["-a", f"url={url}", "-a", f"out={out}"]
        for name, value in {
            "NEWSCRAWL_ALLOWED_ADDRESSES": allowed,
            "ITEM_PIPELINES": "{}",
            "EXTENSIONS": '{"newscrawl.runs.RunRecorder": null}',
            "ROBOTSTXT_OBEY": "False",
            "RETRY_ENABLED": "False",
            "NEWSCRAWL_INCREMENTAL_ENABLED": "False",
        }.items():
            cmd += ["-s", f"{name}={value}"]
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env["SCRAPY_SETTINGS_MODULE"] = "newscrawl.settings"
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
        proc = subprocess.run(
            cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
        )
    finally:
        server.shutdown()
        server.server_close()
    assert out.exists(), proc.stderr[-3000:]
    result = json.loads(out.read_text())
    if allowed:
        assert result == {"status": 200}
    else:
        assert result["reason"] == "private_address"
        assert "localhost = 127.0.0.1" in result["detail"]


def test_http_and_alias_urls_redirected_to_https_are_still_fetched(
    tmp_path: Path, mongo_settings: dict[str, Any], mongo_client: MongoClient[dict[str, Any]]
) -> None:
    """GitHub Pages answers ``http://`` and the alias host with a 301 to https
    on the main host: the same canonical URL, which the dupefilter would drop
    as a duplicate of the very page being fetched. Every article must still be
    stored, each page fetched once."""
    site = tmp_path / "site"
    build_site(site, articles=150, seed=9)
    FaultPlan(rate=0.0, traps=False, robots="", https_only=True).save(site)
    access = tmp_path / "access.jsonl"
    with ReplicaProcess.start(site, access_log=access) as replica:
        code, stats, output = run_crawl(replica.proxy_url, mongo_settings, tmp_path, timeout=300)
    assert code == 0, output[-3000:]
    assert stats.get("log_count/ERROR", 0) == 0
    records = fetched(read_access(access))
    redirected = [r for r in records if r.get("fault") == "https_only"]
    assert len(redirected) >= 10
    site_pages = [r for r in records if urlsplit(r["url"]).hostname in (MAIN, "finews.zning.me")]
    assert {urlsplit(r["url"])[:2] for r in site_pages if r["status"] == 200} == {("https", MAIN)}
    expected = load_expected(site / "expected.jsonl")
    reachable = {key for key, doc in expected.items() if doc["reachable"]}
    db = mongo_client[mongo_settings["MONGO_DATABASE"]]
    assert {doc["_id"] for doc in db.articles.find()} == reachable
    answered = Counter(canonical_url(r["url"]) for r in records if r["status"] == 200)
    assert {url: n for url, n in answered.items() if n > 1} == {}
    run = db.crawl_runs.find_one()
    assert run is not None and run["failed_urls"] == []
