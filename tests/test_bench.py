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

import pytest

from bench import crawls, nginx, parity
from newscrawl.replica.build import build_site
from newscrawl.replica.process import ReplicaProcess

BENCH_MODULES = (
    "bench.nginx",
    "bench.parity",
    "bench.handlers",
    "bench.crawls",
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
