"""The bench's own machinery (bench/): nginx as the replica proxy, its parity
with the Python replica, the bare spider through it. The timed runs are
``make bench``, not tests."""

from __future__ import annotations

import doctest
import importlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from bench import crawls, dbload, nginx, parity
from newscrawl.replica.build import build_site
from newscrawl.replica.process import ReplicaProcess

BENCH_MODULES = (
    "bench.nginx",
    "bench.parity",
    "bench.handlers",
    "bench.crawls",
    "bench.dbload",
    "bench.report",
    "bench.writes",
    "bench.workers",
    "bench.cpu",
    "bench.__main__",
)

needs_nginx = pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
    reason="nginx is not installed (make bench installs it)",
)


@pytest.mark.parametrize("name", BENCH_MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0


@pytest.fixture(scope="module")
def small_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("bench-site") / "site"
    build_site(site, articles=40, seed=3)
    return site


@pytest.fixture
def nginx_proxy(small_site: Path, tmp_path: Path) -> Iterator[nginx.NginxProxy]:
    with nginx.NginxProxy(small_site, tmp_path / "nginx") as proxy:
        yield proxy


def test_config_has_one_server_per_tree(small_site: Path, tmp_path: Path) -> None:
    text = nginx.render_config(small_site, 12345, tmp_path)
    assert text.count("listen 127.0.0.1:12345") == 3  # default (third party) + two trees
    assert "server_name finews.withounder.com finews.zning.me localhost 127.0.0.1;" in text
    assert "server_name finews.zning.xyz choicewzp1.eastmoney.com;" in text
    assert "return 502" in text


@needs_nginx
def test_nginx_answers_like_the_python_replica(
    small_site: Path, nginx_proxy: nginx.NginxProxy
) -> None:
    urls = parity.sample_urls(small_site)
    with ReplicaProcess.start(small_site) as reference:
        summary = parity.check_parity(reference.port, nginx_proxy.port, urls)
    assert summary["urls"] == len(urls)
    statuses = summary["statuses"]
    assert isinstance(statuses, dict)
    assert {"200", "301", "404", "502"} <= set(statuses)


@needs_nginx
def test_parity_fails_on_another_site(
    small_site: Path, tmp_path: Path, nginx_proxy: nginx.NginxProxy
) -> None:
    other = tmp_path / "other"
    build_site(other, articles=40, seed=4)
    with ReplicaProcess.start(other) as reference, pytest.raises(parity.ParityError):
        parity.check_parity(reference.port, nginx_proxy.port, parity.sample_urls(small_site))


@needs_nginx
def test_nginx_stops_with_its_workers(small_site: Path, tmp_path: Path) -> None:
    proxy = nginx.NginxProxy(small_site, tmp_path / "nginx").start()
    master = proxy.pid
    assert master is not None
    workers = nginx.child_pids(master)
    assert workers
    proxy.stop()
    assert not any(Path(f"/proc/{pid}").exists() for pid in [master, *workers])


@needs_nginx
@pytest.mark.crawl
def test_bare_spider_fetches_every_page_through_nginx(
    small_site: Path, nginx_proxy: nginx.NginxProxy, tmp_path: Path
) -> None:
    run = crawls.run_crawl(
        crawls.BARE,
        0,
        proxy_url=nginx_proxy.proxy_url,
        workdir=tmp_path / "crawl",
        settings={"NEWSCRAWL_DATA_DIR": str(tmp_path / "data")},
        watch_nginx=[nginx_proxy.pid or 0],
    )
    assert run.exit_code == 0, Path(run.log).read_text()[-3000:]
    assert run.finish_reason == "finished"
    manifest = json.loads((small_site / "manifest.json").read_text())
    # most pages of the site are reachable from the home page (not every folder
    # page is linked): fetched, https listing links included, with no failure
    assert run.pages >= 0.75 * manifest["counts"]["pages"]
    assert run.extra["failed"] == 0
    assert set(run.extra["statuses"]) <= {"200", "404"}
    assert run.items == 0
    assert run.pages_per_second > 0
    assert run.max_rss_mb > 0


def test_post_fields_same_from_the_links_parse(small_site: Path) -> None:
    """The spider hands parse_post_page the response's own parse (one parse
    per page, see the bench): the fields must be those of a fresh parse."""
    from scrapy.http import HtmlResponse

    from bench.cpu import saved_pages
    from newscrawl.extract.post import parse_post_page

    pages = saved_pages(small_site)
    assert len(pages) > 30
    for page in pages:
        response = HtmlResponse(page.url, body=page.html, encoding="utf-8")
        response.css("a::attr(href)").getall()  # the spider reads links first
        alone = parse_post_page(response.text, page.url)
        shared = parse_post_page(response.text, page.url, response.selector)
        assert shared == alone
        assert shared is not None


@needs_nginx
@pytest.mark.crawl
def test_replay_does_the_database_work_of_the_recorded_crawl(
    small_site: Path,
    nginx_proxy: nginx.NginxProxy,
    tmp_path: Path,
    mongo_uri: str,
    mongo_client: MongoClient[dict[str, Any]],
    mongo_db_name: str,
) -> None:
    """The bench's ceiling crawl (storage off beside a storage-on crawl's
    database commands, replayed) is only a ceiling if the replay makes the
    server do that crawl's work: the replayed database must hold what the
    crawl stored, document for document, with the same indexes."""
    log = tmp_path / "dbload.bson"
    settings = {
        "MONGO_URI": mongo_uri,
        "MONGO_DATABASE": mongo_db_name,
        "NEWSCRAWL_DATA_DIR": str(tmp_path / "data"),
    }
    run = crawls.run_crawl(
        crawls.PRODUCT,
        0,
        proxy_url=nginx_proxy.proxy_url,
        workdir=tmp_path / "crawl",
        settings=settings,
        record=log,
    )
    assert run.exit_code == 0, Path(run.log).read_text()[-3000:]
    assert run.stored > 30
    replayed = f"{mongo_db_name}_replay"
    try:
        off = crawls.run_crawl(
            crawls.DB_LOAD,
            0,
            proxy_url=nginx_proxy.proxy_url,
            workdir=tmp_path / "crawl",
            settings={"NEWSCRAWL_DATA_DIR": str(tmp_path / "data")},
            beside=dbload.replay_command(log, mongo_uri, replayed, 0.5),
        )
        assert off.exit_code == 0, Path(off.log).read_text()[-3000:]
        assert off.stored == 0  # storage off: the crawler wrote nothing
        report = off.extra["beside"]
        assert report["exit_code"] == 0
        assert report["commands"] == sum(1 for _ in dbload.load(log)) > 10
        assert report["errors"] == 0
        source, copy = mongo_client[mongo_db_name], mongo_client[replayed]
        for name in ("articles", "page_state", "dedup_index"):
            fields = {"_id": 1, "content_hash": 1, "kind": 1, "root": 1}
            mine = sorted(map(str, source[name].find({}, fields)))
            assert mine, name
            assert sorted(map(str, copy[name].find({}, fields))) == mine, name
        assert copy["articles"].index_information() == source["articles"].index_information()
        assert copy["articles"].options() == source["articles"].options()  # the validator
    finally:
        mongo_client.drop_database(replayed)


def test_recorder_keeps_commands_not_driver_chatter(
    mongo_uri: str, mongo_client: MongoClient[dict[str, Any]], mongo_db_name: str, tmp_path: Path
) -> None:
    recorder = dbload.Recorder()
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, event_listeners=[recorder])
    try:
        db = client[mongo_db_name]
        db.things.insert_many([{"_id": i, "n": i} for i in range(5)])
        db.things.update_one({"_id": 2}, {"$set": {"n": 20}})
        assert len(list(db.things.find({}, batch_size=2))) == 5  # getMore follows
    finally:
        client.close()
    assert recorder.save(tmp_path / "log.bson") == 3
    entries = list(dbload.load(tmp_path / "log.bson"))
    assert [next(iter(e["cmd"])) for e in entries] == ["insert", "update", "find"]
    assert all("lsid" not in e["cmd"] and "$db" not in e["cmd"] for e in entries)
    assert [e["t"] for e in entries] == sorted(e["t"] for e in entries)
    report = dbload.replay(entries, mongo_client, f"{mongo_db_name}_r", scale=0.0)
    try:
        assert report["commands"] == 3 and report["errors"] == 0
        assert list(mongo_client[f"{mongo_db_name}_r"].things.find().sort("_id")) == list(
            mongo_client[mongo_db_name].things.find().sort("_id")
        )
    finally:
        mongo_client.drop_database(f"{mongo_db_name}_r")
