"""One record per story, end to end: a generated replica with the generator's
syndicated near copies plus exact and edited copies republished under new
ids, crawled over HTTP(S) through the proxy into a real database server.

Checked: one document per article id; every labelled duplicate pair linked
to the earliest-published copy (>= 98 %) and nothing else linked; each
canonical page fetched once, every skipped request counted by the
dupefilter."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from parsel import Selector
from pymongo import MongoClient
from pymongo.database import Database

from newscrawl.replica.build import build_site
from newscrawl.replica.process import ReplicaProcess
from newscrawl.replica.updates import Copy, republish
from newscrawl.sites import finews
from newscrawl.spiders.finews import FOLLOW
from tests.crawling import fetch_counts, load_expected, run_crawl

pytestmark = pytest.mark.crawl

ARTICLES = 500
SEED = 20261130
COPIES = 10
#: every other copy exact, the rest with 10 % or 20 % of their sentences edited
EDITS = (0.0, 0.1, 0.0, 0.2)


@dataclass
class Crawled:
    site: Path
    copies: list[Copy]
    code: int
    stats: dict[str, Any]
    output: str
    db: Database[dict[str, Any]]
    #: access log lines of the crawl
    access: list[dict[str, Any]]


@pytest.fixture(scope="module")
def crawled(
    tmp_path_factory: pytest.TempPathFactory,
    mongo_uri: str,
    mongo_client: MongoClient[dict[str, Any]],
) -> Iterator[Crawled]:
    """One crawl of a labelled replica into a fresh database."""
    site = tmp_path_factory.mktemp("dedup-site")
    work = tmp_path_factory.mktemp("dedup-crawl")
    build_site(site, articles=ARTICLES, seed=SEED)
    copies = republish(site, COPIES, edits=EDITS, seed=SEED)
    name = f"test_{uuid.uuid4().hex[:12]}"
    settings = {
        "MONGO_URI": mongo_uri,
        "MONGO_DATABASE": name,
        "NEWSCRAWL_DATA_DIR": str(work / ".newscrawl"),
    }
    try:
        with ReplicaProcess.start(site, access_log=site / "access.jsonl") as replica:
            code, stats, output = run_crawl(replica.proxy_url, settings, work)
        lines = (site / "access.jsonl").read_text().splitlines()
        access = [json.loads(line) for line in lines if line]
        yield Crawled(site, copies, code, stats, output, mongo_client[name], access)
    finally:
        mongo_client.drop_database(name)


def _when(value: str | datetime | None) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if not value:
        return datetime.max.replace(tzinfo=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def expected_roots(expected: dict[str, dict[str, Any]], copies: list[Copy]) -> dict[str, str]:
    """Article key -> the key it must point at (the earliest-published member
    of its labelled group), for every member but the earliest."""
    groups: dict[str, set[str]] = {}
    for key, record in expected.items():
        original = record.get("near_duplicate_of")
        if original:
            groups.setdefault(f"finews:{original}", {f"finews:{original}"}).add(key)
    for copy in copies:
        groups.setdefault(copy.of, {copy.of}).add(copy.key)
    published = {key: _when(record.get("published_at")) for key, record in expected.items()}
    published |= {copy.key: _when(copy.published_at) for copy in copies}
    roots: dict[str, str] = {}
    for members in groups.values():
        present = [key for key in members if key in published]
        root = min(present, key=lambda key: (published[key], key))
        roots |= {key: root for key in present if key != root}
    return roots


def followed_links(site: Path, fetched: list[str]) -> int:
    """How many requests the spider makes from the pages it fetched (raw
    URLs from the access log): the start page, the feed, every followable
    ``<a href>`` of a site page, every post link of the feed (a URL a page
    links twice is asked for once; repeats across pages are included: the
    dupefilter sees them all)."""
    www = site / "www" / finews.MAIN_HOST
    total = 2  # the home page and the feed
    for url in fetched:
        kind = finews.route(url)
        if kind not in (finews.HOME, finews.CATEGORY, finews.POST, finews.FEED):
            continue
        path = unquote(urlsplit(url).path)
        file = www / (path.lstrip("/") + ("index.html" if path.endswith("/") else ""))
        text = file.read_text(encoding="utf-8")
        if kind == finews.FEED:
            hrefs = Selector(text=text, type="xml").xpath(
                "//*[local-name()='entry']/*[local-name()='link']/@href"
            )
            total += len(
                {h.strip() for h in hrefs.getall() if finews.route(h.strip()) == finews.POST}
            )
            continue
        links = set()
        for href in Selector(text=text).css("a::attr(href)").getall():
            href = href.strip()
            if not href or href.startswith(("#", "javascript:", "mailto:")):
                continue
            if finews.route(urljoin(url, href)) in FOLLOW:
                links.add(urljoin(url, href))
        total += len(links)
    return total


def test_one_document_per_article_and_every_copy_linked_to_the_earliest(
    crawled: Crawled,
) -> None:
    site, copies, stats, mongo_db = crawled.site, crawled.copies, crawled.stats, crawled.db
    assert crawled.code == 0, crawled.output[-3000:]

    expected = load_expected(site / "expected.jsonl")
    reachable = {key for key, record in expected.items() if record.get("reachable", True)}
    wanted = reachable | {copy.key for copy in copies}
    docs = {doc["_id"]: doc for doc in mongo_db.articles.find()}
    # one document per article id, every article stored (copies included)
    assert sorted(docs) == sorted(wanted)
    codes = [doc["info_code"] for doc in docs.values() if doc.get("info_code")]
    assert len(codes) == len(set(codes))

    roots = {key: root for key, root in expected_roots(expected, copies).items() if key in docs}
    assert len(roots) >= 20, "too few labelled pairs for a measurement"
    linked = {key: doc["duplicate_of"] for key, doc in docs.items() if doc.get("duplicate_of")}
    right = {key for key, root in roots.items() if linked.get(key) == root}
    assert len(right) / len(roots) >= 0.98, {k: (linked.get(k), r) for k, r in roots.items()}
    false_links = {key: root for key, root in linked.items() if roots.get(key) != root}
    assert false_links == {}
    # the earliest copy of each group is not itself linked
    assert not any(key in linked for key in set(roots.values()))
    # linking is not a new version
    assert {doc["version"] for doc in docs.values()} == {1}

    exact = sum(1 for copy in copies if copy.edit == 0.0)
    assert stats.get("newscrawl/dedup/exact", 0) >= exact
    assert stats.get("newscrawl/dedup/near", 0) >= len(roots) - exact
    assert stats.get("newscrawl/dedup/merged", 0) > 0  # two-category articles
    assert stats.get("newscrawl/dedup/errors", 0) == 0
    assert stats.get("log_count/ERROR", 0) == 0

    # the index holds every article long enough, linked the same way
    index = {doc["_id"]: doc for doc in mongo_db.dedup_index.find({}, {"sig": 0})}
    assert all(not doc.get("pending") for doc in index.values())
    assert {k: d["root"] for k, d in index.items() if d["root"] != k} == linked


def test_each_page_is_fetched_once_and_the_dupefilter_counts_the_rest(
    crawled: Crawled, tmp_path: Path
) -> None:
    stats = crawled.stats
    assert crawled.code == 0, crawled.output[-3000:]
    part = tmp_path / "access.jsonl"
    part.write_text("".join(json.dumps(entry) + "\n" for entry in crawled.access))
    counts = fetch_counts(part)
    assert {url: n for url, n in counts.items() if n > 1} == {}
    assert stats.get("retry/count", 0) == 0
    shares = sum(1 for url in counts if finews.route(url) == finews.SHARE_JSON)
    pages = sum(counts.values()) - shares
    # each request the scheduler took was fetched once (share JSONs bypass the filter)
    assert stats["scheduler/enqueued"] == pages + shares
    refused = sum(v for k, v in stats.items() if k.startswith("newscrawl/refused/"))
    # links to posts already stored in this run, dropped before the scheduler
    known = stats.get("newscrawl/incremental/skipped", 0)
    filtered = stats.get("dupefilter/filtered", 0)
    # home and post links the spider requested before: no second Request made
    repeated = stats.get("newscrawl/links/repeated", 0)
    assert filtered > 0 and repeated > 0
    # every link not fetched is a repeat, counted by the spider or the dupefilter
    # (or skipped earlier as an already stored post)
    raw = [e["url"] for e in crawled.access if e["method"] == "GET" and e["status"] == 200]
    assert followed_links(crawled.site, raw) == pages + filtered + repeated + refused + known
