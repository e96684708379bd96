"""Incremental crawls of a replica: a second crawl with no change is nearly free,
new posts are found and stored alone, updates within the re-check window are
picked up, posts that turn 404 get ``gone_at``, a failed write is retried.
Real replica over HTTP(S), real database server, crawls in child processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database

from newscrawl.incremental.policy import Known, Validators
from newscrawl.incremental.state import Config, CrawlState, load_state, post_urls
from newscrawl.replica.build import _json_bytes, build_site, build_site_from_posts
from newscrawl.replica.generate import generate
from newscrawl.replica.posts import read_post, write_post
from newscrawl.replica.process import ReplicaProcess
from newscrawl.replica.site import SiteConfig
from newscrawl.sites import canonical_url, finews
from tests.crawling import differences, run_crawl

SEED = 20261201

# -- helpers (also used by test_resume and test_schedule) ------------------------------


def site_now(site: Path) -> datetime:
    """The replica's clock: its build time."""
    return SiteConfig.load(site / "site.json").now


def crawl_settings(mongo_settings: dict[str, Any], site: Path, **extra: Any) -> dict[str, Any]:
    """Settings for a crawl of ``site`` whose re-check window is measured from
    the replica's clock."""
    return {
        **mongo_settings,
        "NEWSCRAWL_NOW": site_now(site).isoformat(),
        "NEWSCRAWL_ALLOWED_ADDRESSES": "127.0.0.1",  # the replica proxy is on loopback
        **extra,
    }


class AccessLog:
    """The replica's access log, read in slices: what one crawl requested."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def take(self) -> list[dict[str, Any]]:
        """Requests logged since the last call (CONNECT tunnels left out)."""
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        new, self.offset = lines[self.offset :], len(lines)
        return [entry for entry in map(json.loads, new) if entry["method"] != "CONNECT"]


def add_posts(site: Path, articles: int, seed: int, minutes: int = 10) -> dict[str, Any]:
    """Publish ``articles`` new generated articles ``minutes`` after the
    replica's clock and rebuild it; returns their expected documents by key."""
    now = site_now(site) + timedelta(minutes=minutes)
    generated = generate(articles, seed, now, days=0.04)
    for post in generated.posts:
        write_post(post, site / "posts")
    for code, doc in generated.share_docs.items():
        (site / "share" / f"{code}.json").write_bytes(_json_bytes(doc))
    build_site_from_posts(site / "posts", site, now=now, share_dir=site / "share")
    return {record["key"]: record for record in generated.expected}


def load_expected_rows(site: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (site / "expected.jsonl").read_text().splitlines()]


def without(doc: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in names}


@pytest.fixture
def site(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Path, ReplicaProcess, AccessLog]]:
    """A generated replica of its own (tests change it): 300 articles, or as
    many as an indirect parameter says."""
    folder = tmp_path / "site"
    build_site(folder, articles=getattr(request, "param", 300), seed=SEED)
    log = folder / "access.jsonl"
    with ReplicaProcess.start(folder, access_log=log) as replica:
        yield folder, replica, AccessLog(log)


# -- end to end ----------------------------------------------------------------------------


@pytest.mark.crawl
def test_second_crawl_is_nearly_free_and_third_stores_only_new_posts(
    site: tuple[Path, ReplicaProcess, AccessLog],
    mongo_settings: dict[str, Any],
    mongo_db: Database[dict[str, Any]],
    tmp_path: Path,
) -> None:
    folder, replica, log = site
    settings = crawl_settings(mongo_settings, folder)

    code, stats1, output = run_crawl(replica.proxy_url, settings, tmp_path)
    assert code == 0, output[-3000:]
    first = log.take()
    stored1 = {doc["_id"]: doc for doc in mongo_db.articles.find()}
    reachable = {r["key"] for r in load_expected_rows(folder) if r["reachable"]}
    assert set(stored1) == reachable
    assert stats1["newscrawl/store/inserted"] == len(reachable)

    # no change on the site: home and feed answer 304, nothing else is fetched
    code, stats2, output = run_crawl(replica.proxy_url, settings, tmp_path)
    assert code == 0, output[-3000:]
    second = log.take()
    assert len(second) <= 0.05 * len(first), [e["url"] for e in second]
    assert stats2["newscrawl/http/not_modified"] >= 2
    assert stats2.get("item_scraped_count", 0) == 0
    stored2 = {doc["_id"]: doc for doc in mongo_db.articles.find()}
    assert set(stored2) == set(stored1)
    for key, doc in stored2.items():
        assert without(doc, "last_seen_at") == without(stored1[key], "last_seen_at"), key

    # 20 new articles: exactly those are stored, and little else is fetched
    added = add_posts(folder, 20, seed=SEED + 1)
    assert len(added) == 20 and not set(added) & set(stored1)
    code, stats3, output = run_crawl(replica.proxy_url, settings, tmp_path)
    assert code == 0, output[-3000:]
    third = log.take()
    stored3 = {doc["_id"]: doc for doc in mongo_db.articles.find()}
    assert set(stored3) - set(stored1) == set(added)
    assert stats3["newscrawl/store/inserted"] == 20
    assert differences([stored3[key] for key in added], added) == []
    for key, doc in stored1.items():
        assert without(stored3[key], "last_seen_at") == without(doc, "last_seen_at"), key

    new_pages = {
        url for key in added for url in post_urls([stored3[key]["url"], *stored3[key]["urls"]])
    }
    new_codes = {stored3[key]["info_code"] for key in added} - {None}
    needed = [
        e
        for e in third
        if canonical_url(e["url"]) in new_pages or finews.info_code_of(e["url"]) in new_codes
    ]
    old_posts = [
        e["url"]
        for e in third
        if finews.route(e["url"]) == finews.POST and canonical_url(e["url"]) not in new_pages
    ]
    assert old_posts == []
    overhead = len(third) - len(needed)
    assert overhead <= 0.05 * len(first), [e["url"] for e in third if e not in needed]
    print(
        f"requests: first {len(first)}, second {len(second)}, third {len(third)}"
        f" ({len(needed)} for the new articles, {overhead} more)"
    )


def _post_files(site: Path, key: str) -> list[Path]:
    manifest = json.loads((site / "manifest.json").read_text())
    return [site / "posts" / name for name in manifest["article_posts"].get(key, [])]


@pytest.mark.crawl
@pytest.mark.parametrize("site", [120], indirect=True)
def test_recent_articles_are_rechecked_old_ones_not_and_404_is_gone(
    site: tuple[Path, ReplicaProcess, AccessLog],
    mongo_settings: dict[str, Any],
    mongo_db: Database[dict[str, Any]],
    tmp_path: Path,
) -> None:
    folder, replica, log = site
    now = site_now(folder)
    settings = crawl_settings(
        mongo_settings, folder, NEWSCRAWL_RECHECK_WINDOW="24h", NEWSCRAWL_RECHECK_AFTER="0"
    )
    code, _, output = run_crawl(replica.proxy_url, settings, tmp_path)
    assert code == 0, output[-3000:]
    log.take()

    def published(doc: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(doc["published_at"].replace("Z", "+00:00"))

    plain = [
        r
        for r in load_expected_rows(folder)
        if r["reachable"]
        and r["kind"] == "news"
        and r["published_at"]
        and len(_post_files(folder, r["key"])) == 1
        and r["title"]
        and r["near_duplicate_of"] is None
    ]
    recent = [r for r in plain if published(r) > now - timedelta(hours=20)]
    old = [r for r in plain if published(r) < now - timedelta(hours=30)]
    assert len(recent) >= 3 and len(old) >= 1
    edited, removed, old_edited = recent[0], recent[1], old[0]
    for record in (edited, old_edited):
        path = _post_files(folder, record["key"])[0]
        post = read_post(path, folder / "posts")
        post.title = post.title + "（更新）"
        write_post(post, folder / "posts")
    _post_files(folder, removed["key"])[0].unlink()
    build_site_from_posts(folder / "posts", folder, share_dir=folder / "share")
    in_window = {
        doc["_id"]
        for doc in mongo_db.articles.find({"published_at": {"$gte": now - timedelta(hours=24)}})
    }

    code, stats, output = run_crawl(replica.proxy_url, settings, tmp_path)
    assert code == 0, output[-3000:]
    requests = log.take()
    posts = {canonical_url(e["url"]) for e in requests if finews.route(e["url"]) == finews.POST}
    by_key = {doc["_id"]: doc for doc in mongo_db.articles.find()}
    window_pages = {p for key in in_window for p in post_urls(by_key[key]["urls"])}
    assert posts == window_pages  # every recent post re-checked, nothing older

    updated = by_key[edited["key"]]
    assert updated["version"] == 2 and updated["title"].endswith("（更新）")
    assert mongo_db.article_versions.count_documents({"article_id": edited["key"]}) == 1
    assert by_key[old_edited["key"]]["version"] == 1  # outside the window: not fetched
    gone = by_key[removed["key"]]
    assert gone["gone_at"] is not None and gone["version"] == 1  # kept, marked
    assert stats["newscrawl/incremental/gone"] == 1
    assert stats["newscrawl/http/not_modified"] >= len(window_pages) // 2
    assert stats["newscrawl/store/updated"] == 1

    # the gone post is not asked for again; unchanged recent posts answer 304
    code, stats, output = run_crawl(replica.proxy_url, settings, tmp_path)
    assert code == 0, output[-3000:]
    again = {canonical_url(e["url"]) for e in log.take()}
    assert post_urls(gone["urls"])[0] not in again
    assert stats.get("newscrawl/store/updated", 0) == 0
    assert mongo_db.articles.count_documents({}) == len(by_key)


@pytest.mark.crawl
@pytest.mark.parametrize("site", [60], indirect=True)
def test_a_page_whose_article_was_not_stored_is_fetched_again(
    site: tuple[Path, ReplicaProcess, AccessLog],
    mongo_settings: dict[str, Any],
    mongo_db: Database[dict[str, Any]],
    tmp_path: Path,
) -> None:
    folder, replica, log = site
    settings = crawl_settings(mongo_settings, folder)
    rows = [r for r in load_expected_rows(folder) if r["reachable"] and r["info_code"]]
    victim = rows[len(rows) // 2]
    # a document that holds the victim's info_code under another _id: the
    # store's unique index refuses the victim's write (a real failed write)
    from newscrawl.storage.schema import ensure_collections

    ensure_collections(mongo_db)
    mongo_db.articles.insert_one(
        {"_id": "blocker", "info_code": victim["info_code"]}, bypass_document_validation=True
    )
    code, stats, output = run_crawl(replica.proxy_url, settings, tmp_path)
    assert mongo_db.articles.find_one({"_id": victim["key"]}) is None, output[-3000:]
    assert mongo_db.articles.count_documents({}) > len(rows) // 2
    log.take()

    mongo_db.articles.delete_one({"_id": "blocker"})
    code, stats, output = run_crawl(replica.proxy_url, settings, tmp_path)
    assert code == 0, output[-3000:]
    fetched = {canonical_url(e["url"]) for e in log.take()}
    assert canonical_url(victim["url"]) in fetched
    assert mongo_db.articles.find_one({"_id": victim["key"]}) is not None
    assert stats["newscrawl/store/inserted"] == 1


@pytest.mark.crawl
@pytest.mark.parametrize("site", [60], indirect=True)
def test_full_crawl_when_incremental_is_off(
    site: tuple[Path, ReplicaProcess, AccessLog],
    mongo_settings: dict[str, Any],
    mongo_db: Database[dict[str, Any]],
    tmp_path: Path,
) -> None:
    folder, replica, log = site
    settings = crawl_settings(mongo_settings, folder)
    assert run_crawl(replica.proxy_url, settings, tmp_path)[0] == 0
    first = log.take()
    off = {**settings, "NEWSCRAWL_INCREMENTAL_ENABLED": "False"}
    code, stats, output = run_crawl(replica.proxy_url, off, tmp_path)
    assert code == 0, output[-3000:]
    assert len(log.take()) == len(first)
    assert stats["newscrawl/store/unchanged"] == mongo_db.articles.count_documents({})


# -- the state, without a crawl ----------------------------------------------------------

T0 = datetime(2022, 5, 27, 4, 0, tzinfo=UTC)
POST_A = "https://finews.withounder.com/a/2022/05/27/NW202205270000000001.html"
POST_B = "https://finews.withounder.com/b/2022/05/27/NW202205270000000002.html"
CATEGORY = "https://finews.withounder.com/category/a.html"
HOME = "https://finews.withounder.com/"
OTHER_CATEGORY = "https://finews.withounder.com/category/b.html"


def test_list_validators_wait_until_every_new_post_is_stored() -> None:
    state = CrawlState(Config(), reference_now=T0, wall_now=T0)
    state.fetched[CATEGORY] = Validators(CATEGORY, '"v1"')
    assert state.list_parsed(CATEGORY, [POST_A, POST_B]) is False
    assert state.list_parsed(HOME, [POST_A]) is False
    assert state.settle(POST_A, Known("finews:1", T0, T0)) == [HOME]
    assert CATEGORY in state.children
    assert state.settle(POST_B, Known("finews:2", T0, T0)) == [CATEGORY]
    # a post that answers 404 is not stored, but its list page is done
    third = CATEGORY.replace("/a.html", "/c.html")
    assert state.list_parsed(third, ["https://finews.withounder.com/c/1/2/3/NW9.html"]) is False
    assert state.release("https://finews.withounder.com/c/1/2/3/NW9.html") == [third]
    assert "https://finews.withounder.com/c/1/2/3/NW9.html" not in state.known
    # a list page whose posts are all known is done at once
    assert state.list_parsed(OTHER_CATEGORY, [POST_A]) is True


def test_decisions_follow_the_window_and_the_last_check() -> None:
    config = Config(window=timedelta(hours=24), recheck_after=timedelta(hours=1))
    state = CrawlState(config, reference_now=T0, wall_now=T0 + timedelta(days=900))
    wall = state.wall_now
    state.known[POST_A] = Known("a", T0 - timedelta(hours=3), wall - timedelta(hours=2))
    state.known[POST_B] = Known("b", T0 - timedelta(days=3), wall - timedelta(days=2))
    state.list_checked[CATEGORY] = wall - timedelta(hours=2)
    state.list_checked[HOME] = wall - timedelta(hours=2)
    assert state.decide(POST_A) == "recheck"
    assert state.decide(POST_B) == "skip"
    assert state.decide("https://finews.withounder.com/c/2022/05/27/NW3.html") == "fetch"
    assert state.recheck_candidates() == [POST_A]
    assert state.stale_lists() == [CATEGORY]  # home is fetched anyway
    folder = "http://finews.zning.me/a/"  # fetched in this form last time: its validators
    state.validators[CATEGORY] = Validators(folder, '"f"', "Fri, 27 May 2022 04:00:00 GMT")
    assert state.fetch_url(CATEGORY) == folder and state.fetch_url(POST_A) == POST_A
    assert state.list_wanted(CATEGORY, from_new_post=False)
    state.list_checked[CATEGORY] = wall
    assert not state.list_wanted(CATEGORY, from_new_post=False)
    assert state.list_wanted(CATEGORY, from_new_post=True)


def test_state_is_loaded_from_articles_and_page_state(mongo_db: Database[dict[str, Any]]) -> None:
    wall = datetime.now(tz=UTC).replace(microsecond=0)
    mongo_db.articles.insert_many(
        [
            {  # recent: known through its two post URLs (one in another form)
                "_id": "finews:NW202205270000000001",
                "url": POST_A,
                "urls": [POST_A.replace("https://finews.withounder.com", "http://finews.zning.me")],
                "published_at": T0 - timedelta(hours=1),
                "last_seen_at": wall - timedelta(minutes=5),
            },
            {  # older than the horizon: left out
                "_id": "finews:old",
                "url": "https://finews.withounder.com/a/2022/01/01/NW202201010000000009.html",
                "urls": [],
                "published_at": T0 - timedelta(days=30),
            },
        ]
    )
    mongo_db.page_state.insert_many(
        [
            {
                "_id": POST_B,
                "kind": "post",
                "outcome": "stored",
                "article_id": "finews:NW202205270000000002",
                "published_at": T0 - timedelta(days=90),
                "checked_at": wall - timedelta(hours=1),
                "etag": '"b"',
                "url": POST_B,
            },
            {"_id": CATEGORY, "kind": "category", "checked_at": wall, "etag": '"c"'},
            {"_id": HOME, "kind": "home", "checked_at": wall - timedelta(days=30), "etag": '"h"'},
            {"_id": OTHER_CATEGORY, "kind": "category", "linked_at": wall},  # never checked
        ]
    )
    state = load_state(mongo_db, Config(), reference_now=T0, wall_now=wall)
    assert set(state.known) == {POST_A, POST_B}
    assert state.known[POST_A].article_id == "finews:NW202205270000000001"
    assert state.known[POST_B].published_at == T0 - timedelta(days=90)
    assert set(state.validators) == {POST_B, CATEGORY}  # home: checked too long ago
    assert state.validators[CATEGORY].url == CATEGORY
    assert state.list_checked == {CATEGORY: wall, OTHER_CATEGORY: None}
    assert state.stale_lists() == [OTHER_CATEGORY]


def test_state_writer_inserts_new_pages_and_updates_the_others(
    mongo_db: Database[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pymongo import UpdateOne
    from pymongo.collection import Collection

    from newscrawl.incremental.state import NewPage, StateWriter, linked_values, page_values

    wall = datetime.now(tz=UTC).replace(microsecond=0)
    # written by an earlier crawl, older than the horizon: not loaded, so not known to exist
    mongo_db.page_state.insert_one({"_id": POST_B, "kind": "post", "etag": '"old"', "note": 1})
    commands: list[str] = []
    for name in ("insert_many", "bulk_write"):
        real = getattr(Collection, name)

        def spy(self: Any, *args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            commands.append(_name)
            return _real(self, *args, **kw)

        monkeypatch.setattr(Collection, name, spy)
    result = StateWriter(mongo_db).write(
        [
            ("page_state", NewPage.of(CATEGORY, linked_values("category", wall))),
            ("page_state", NewPage.of(POST_B, page_values("post", wall, status=200))),
            ("page_state", NewPage.of(POST_A, page_values("post", wall, status=200))),
            # the same batch checks the category it inserted: applied after the insert
            ("page_state", UpdateOne({"_id": CATEGORY}, {"$set": {"checked_at": wall}})),
        ]
    )
    assert not result.errors and result.written == 4
    assert commands == ["insert_many", "bulk_write"]
    docs = {doc["_id"]: doc for doc in mongo_db.page_state.find()}
    assert docs[CATEGORY] == {
        "_id": CATEGORY, "kind": "category", "linked_at": wall, "checked_at": wall,
    }  # fmt: skip
    assert docs[POST_A] == {"_id": POST_A, "kind": "post", "checked_at": wall, "status": 200}
    # the page that existed got the values set, what it held otherwise kept
    assert docs[POST_B] == {
        "_id": POST_B, "kind": "post", "etag": '"old"', "note": 1, "checked_at": wall,
        "status": 200,
    }  # fmt: skip


@pytest.mark.crawl
def test_a_list_page_that_failed_for_good_is_fetched_first_next_run(
    tmp_path: Path, mongo_settings: dict[str, Any], mongo_db: Database[dict[str, Any]]
) -> None:
    from newscrawl.replica.faults import Fault, FaultPlan

    folder = tmp_path / "site"
    build_site(folder, articles=120, seed=SEED)
    rows = load_expected_rows(folder)
    reachable = {r["key"] for r in rows if r["reachable"]}
    slugs: dict[str, int] = {}
    for row in rows:
        for slug in row["categories"] or []:
            slugs[slug] = slugs.get(slug, 0) + 1
    biggest = max(slugs, key=lambda slug: slugs[slug])
    page = canonical_url(f"https://{finews.MAIN_HOST}/category/{biggest}.html")
    FaultPlan(traps=False, faults=[Fault(url=page, kind="status", status=503)]).save(folder)
    settings = crawl_settings(
        mongo_settings, folder, RETRY_BACKOFF_BASE="0.01", RETRY_BACKOFF_MAX="0.05"
    )

    with ReplicaProcess.start(folder) as replica:
        run_crawl(replica.proxy_url, settings, tmp_path)
    run = mongo_db.crawl_runs.find_one()
    assert run is not None
    failed = {canonical_url(f["url"]): f for f in run["failed_urls"]}
    assert failed[page]["retry"] is True, run["failed_urls"]
    stored = {doc["_id"] for doc in mongo_db.articles.find({}, {"_id": 1})}
    assert stored < reachable  # some posts are listed only on that page

    (folder / "faults.json").unlink()  # the page answers again
    with ReplicaProcess.start(folder) as replica:
        code, stats, output = run_crawl(replica.proxy_url, settings, tmp_path)
    assert code == 0, output[-3000:]
    assert stats["newscrawl/incremental/retried"] >= 1
    stored = {doc["_id"] for doc in mongo_db.articles.find({}, {"_id": 1})}
    assert stored == reachable
