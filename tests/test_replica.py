"""The replica: post files, rendering, the generator, the build and the proxy server.

Everything is served by a real ``python -m newscrawl.replica serve`` process
on loopback and fetched through it with the standard library, as a crawler
would (``http_proxy``/``https_proxy`` pointing at it, https via CONNECT).
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import json
import re
import ssl
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from newscrawl.replica.build import build_site, build_site_from_posts
from newscrawl.replica.posts import (
    format_post,
    load_posts,
    parse_post,
    post_path,
    sample_posts_dir,
    write_post,
)
from newscrawl.replica.process import ReplicaProcess, ReplicaStartError
from newscrawl.replica.render import render_post_page
from newscrawl.replica.site import Site
from newscrawl.replica.vocab import SURNAMES_COMPOUND

SEED = 7
MAIN = "finews.withounder.com"
SEED_POST = "2022-02-18-NW202202182281010830.md"
SEED_PATH = "/dazhongribao/2022/02/18/NW202202182281010830.html"
UNDATED_POST = "undated-202205262391921712.md"


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("replica") / "site"
    build_site(out, articles=300, seed=SEED)
    return out


@pytest.fixture(scope="module")
def replica(site_dir: Path) -> Iterator[ReplicaProcess]:
    with ReplicaProcess.start(site_dir, access_log=site_dir / "access.jsonl") as proc:
        yield proc


@pytest.fixture(scope="module")
def expected(site_dir: Path) -> list[dict[str, Any]]:
    lines = (site_dir / "expected.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def manifest(site_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((site_dir / "manifest.json").read_text(encoding="utf-8"))
    return data


def opener(proxy_url: str) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": proxy_url, "https": proxy_url}),
        urllib.request.HTTPSHandler(context=ssl._create_unverified_context()),
    )


def fetch(
    replica: ReplicaProcess, url: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener(replica.proxy_url).open(request, timeout=10) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def access_log(replica: ReplicaProcess) -> list[dict[str, Any]]:
    assert replica.access_log is not None
    return [json.loads(line) for line in replica.access_log.read_text().splitlines()]


def wait_for_log(replica: ReplicaProcess, url: str, count: int = 1) -> list[dict[str, Any]]:
    """The access-log records of ``url`` once there are ``count`` of them."""
    deadline = time.monotonic() + 5
    while True:
        records = [r for r in access_log(replica) if r["url"] == url]
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.02)


# -- post files -------------------------------------------------------------------------


def test_real_posts_round_trip_byte_for_byte() -> None:
    posts = load_posts(sample_posts_dir())
    assert len(posts) == 9
    for post in posts:
        assert format_post(post) == (sample_posts_dir() / post.file_name).read_text()


def test_undated_post_keeps_its_broken_metadata() -> None:
    post = parse_post((sample_posts_dir() / UNDATED_POST).read_text(), UNDATED_POST)
    assert (post.id, post.title, post.date, post.date_raw) == (
        "202205262391921712",
        "",
        None,
        "+0800",
    )
    assert post_path(post) == "/emnews/2022/05/26/202205262391921712.html"


def test_post_paths_downcase_each_category_and_escape_like_jekyll() -> None:
    text = (
        "---\ntitle: x\ndate: 2022-05-26 23:30:00 +0800\n"
        "categories: 21shijijingjibaodao 21caijingAPP\n---\n"
    )
    post = parse_post(text, "2022-05-26-NW202205262381000001.md")
    assert (
        post_path(post) == "/21shijijingjibaodao/21caijingapp/2022/05/26/NW202205262381000001.html"
    )
    utc = parse_post(
        text.replace("+0800", "+0000"), "x-NW1.md"
    )  # 23:30 UTC is the next day in Shanghai
    assert post_path(utc).startswith("/21shijijingjibaodao/21caijingapp/2022/05/27/")


# -- rendering of the real posts --------------------------------------------------------


@pytest.fixture(scope="module")
def sample_pages() -> dict[str, str]:
    site = Site(load_posts(sample_posts_dir()))
    return {p.file_name: render_post_page(p, site) for p in site.posts}


def test_seed_post_page_as_site_md_describes(sample_pages: dict[str, str]) -> None:
    page = sample_pages[SEED_POST]
    og_urls = re.findall(r'<meta property="og:url" content="([^"]+)"', page)
    assert og_urls == [f"https://finews.zning.me{SEED_PATH}", f"https://{MAIN}{SEED_PATH}"]
    assert f'<link rel="canonical" href="https://{MAIN}{SEED_PATH}" />' in page
    assert '<meta property="article:published_time" content="2022-02-18T10:01:44+08:00" />' in page
    assert "<title>峄城精准监督护航营商环境 - 金融消息</title>" in page
    assert '<meta charset="UTF-8">' in page
    assert '<meta property="og:type" content="article" />' in page
    assert '"@type":"BlogPosting"' in page and '"datePublished":"2022-02-18T10:01:44+08:00"' in page
    assert re.search(r'<link rel="prev" href="https://finews\.withounder\.com/emnews/2021/', page)
    assert re.search(
        r'<link rel="next" href="https://finews\.withounder\.com/emnews/2022/05/26/', page
    )
    assert '<body onload="JavaScript:AutoRefresh(60000);">' in page
    section = page.split("<section>")[1].split("</section>")[0]
    assert "<small>(GMT+8, Asia/Shanghai, CST) 2022-02-18 10:01:44</small>" in section
    assert "<h1>峄城精准监督护航营商环境</h1>" in section
    assert "<p>□ 本报记者张环泽 </p>" in section
    assert '<p class="em_media">（文章来源：大众日报）</p>' in section
    share = "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202202182281010830"
    assert f'<p><a href="{share}">{share}</a></p>' in section
    assert (
        '<p><a href="//finews.withounder.com/category/dazhongribao.html">返回大众日报新闻</a>｜'
        '<a href="//finews.withounder.com/">返回首页</a></p>'
    ) in section
    assert "<small>tags: <em>大众日报新闻</em></small>" in section
    # og:description carries the content, escaped: no raw markup in the head
    head = page.split("</head>")[0]
    assert "&lt;p class=&quot;em_media&quot;&gt;" in head and "<p class" not in head


def test_undated_post_renders_without_date_and_with_its_quirks(
    sample_pages: dict[str, str],
) -> None:
    page = sample_pages[UNDATED_POST]
    assert "article:published_time" not in page and "datePublished" not in page
    assert "<small>(GMT+8, Asia/Shanghai, CST) </small>\n<h1></h1>" in page
    assert "<title>金融消息</title>" in page
    assert "<blockquote>\n  <p>据霍尼韦尔官网消息，5月24日" in page
    assert "<p>&lt;&gt;</p>" in page
    assert "<!-- EM_StockImg_Start -->" in page and '<p style="display:none;' in page


def test_old_rolling_posts_keep_relative_back_links(sample_pages: dict[str, str]) -> None:
    page = sample_pages["2021-12-08-202112082206735975.md"]
    assert '<p><a href="../emnews/">返回东财滚动新闻</a>\n<a href="../">返回首页</a></p>' in page
    origin = "http://finance.eastmoney.com/news/1355,202112082206735975.html"
    assert f'<p><a href="{origin}">{origin}</a></p>' in page
    assert "(央视新闻)</p>" in page


# -- the generator ----------------------------------------------------------------------

#: every variation the generator must produce at N=300 (counted from its own bookkeeping)
REQUIRED_FEATURES = [
    "kind/media",
    "kind/rolling",
    "kind/notice",
    *(
        f"byline/{form}"
        for form in (
            "box",
            "box_tongxunyuan",
            "tongxunyuan",
            "jizhe_two",
            "jizhe_tongxunyuan",
            "xinhua",
            "wen",
            "intern",
            "end",
            "no_space",
            "fullwidth_space",
            "several_spaces",
        )
    ),
    "source/em_media",
    "source/em_media_cut",
    "source/other_paper",
    "source/none",
    "source/trailing_fullwidth",
    "source/trailing_ascii",
    "source/trailing/央视新闻",
    "source/trailing/央视新闻客户端",
    "text/cross_head",
    "text/cross_head_strong",
    "text/entities",
    "text/indent",
    "text/trailing_space",
    "text/br",
    "noise/hidden",
    "noise/stock_chart",
    "noise/stock_link",
    "noise/stock_key",
    "noise/board_link",
    "image/captioned",
    "image/uncaptioned",
    "rolling/one_para",
    "rolling/headline",
    "rolling/digest_body",
    "rolling/digest_only",
    "role/two_categories",
    "role/syndicated",
    "role/near_duplicate",
    "role/orphan",
    "broken/empty_title_share",
    "broken/empty_title_text",
    "broken/empty_date_share",
    "broken/empty_date_code",
    "share/empty",
    "share/choice",
    "share/zning_https",
    "back/alias",
    "back/http",
    "back/folder",
    "back/relative",
    "back/query",
    "back/none",
]


def test_generator_reports_every_variation(manifest: dict[str, Any]) -> None:
    features = manifest["features"]
    rare = {name: features.get(name, 0) for name in REQUIRED_FEATURES if features.get(name, 0) < 2}
    assert rare == {}


def test_variations_are_really_in_the_post_files(site_dir: Path) -> None:
    """Count the variations in the written files themselves, not in the generator's books."""
    texts = {
        p.relative_to(site_dir / "posts").as_posix(): p.read_text(encoding="utf-8")
        for p in (site_dir / "posts").rglob("*.md")
    }
    generated = {
        k: v for k, v in texts.items() if k not in {p.name for p in sample_posts_dir().glob("*.md")}
    }
    patterns = {
        "media id": r"\ncategories: (?!emnews|sitenews).*\n[\s\S]*infoCode=NW\d{18}>",
        "rolling": r"\ncategories: emnews\ntags: 东财滚动新闻\n",
        "box byline": r"<p>□ 本报记者",
        "run-together correspondents": r"<p>本报通讯员[^<\s　]{4,7}</p>",
        "xinhua dateline": r"新华社\w+\d+月\d+日电（记者",
        "wen byline": r"<p>文/记者",
        "intern": r"实习生",
        "end byline": r"（记者[ 　]*[^）<]{2,3}）(?:</p>|\n|$)",
        "em_media": r'<p class="em_media">（文章来源：',
        "cut source": r'（文章来源：[^<）]*<span id="bk_',
        "（央视新闻）": r"（央视新闻）\n",
        "(央视新闻)": r"\(央视新闻\)\n",
        "（央视新闻客户端）": r"（央视新闻客户端）\n",
        "strong cross-head": r"<p><strong>",
        "hidden": r'<p style="display:none;',
        "chart": r"<!-- EM_StockImg_Start -->.*?<!-- EM_StockImg_End -->",
        "quote holder": r'<span id="quote_[^"]+"></span>',
        "stock link": r'<span id="stock_\d+\.\d+"><a [^>]*class="keytip"',
        "image": r"<center><img ",
        "caption": r"<p[^>]*>图片来源：",
        "entity lt": r"&lt;",
        "entity amp": r"&amp;",
        "indent": r"<p>　",
        "digest": r"\n> ",
        "empty share": r"\n<>\n",
        "empty title": r'\ntitle: ""\n',
        "empty date": r"\ndate:  \+0800\n",
        "old share host": r"<http://choicewzp1\.eastmoney\.com/",
        "alias back link": r"\]\(https://finews\.zning\.me/category/",
        "http back link": r"\]\(http://finews\.withounder\.com/category/",
        "folder back link": r"\]\(//finews\.withounder\.com/[^/)]+/\)｜",
        "relative back link": r"\]\(\.\./[^/)]+/\)\n\[返回首页\]\(\.\./\)",
        "query back link": r"\.html\?from=post\)",
        "spaced slug": r"\ncategories: \S+ +\S+\n",
        "bracket slug": r"\ncategories: \S*\(\S*\)\n",
        "upper-case slug": r"\ncategories: \S*[A-Z]\S*\n",
        "origin link": r"<http://(?:finance|stock|hk|global)\.eastmoney\.com/news/\d+,\d{18}\.html>",
    }
    counts = {
        name: sum(1 for t in generated.values() if re.search(rx, t))
        for name, rx in patterns.items()
    }
    rare = {name: n for name, n in counts.items() if n < 2}
    assert rare == {}, counts
    assert sum(1 for name in generated if name.startswith("emnews/")) >= 2  # second-category copies
    compound = sum(1 for t in generated.values() if any(s in t for s in SURNAMES_COMPOUND))
    assert compound >= 2


def test_expected_articles_are_consistent(site_dir: Path, expected: list[dict[str, Any]]) -> None:
    keys = [r["key"] for r in expected]
    assert len(keys) == len(set(keys)) and len(expected) >= 300
    for r in expected:
        if r["kind"] == "news":
            assert r["key"] == f"finews:{r['info_code']}"
            assert re.fullmatch(r"(?:NW)?\d{18}", r["info_code"])
        else:
            assert r["info_code"] is None
            assert r["key"] == "finews:url:" + hashlib.sha1(r["url"].encode()).hexdigest()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["published_at"]), r
        path = unquote(urlsplit(r["url"]).path)
        assert (site_dir / "www" / MAIN / path.lstrip("/")).is_file(), r["url"]
        assert r["title"] and r["body"], r["key"]
        assert r["categories"] == sorted(r["categories"])
        for marker in (
            "本报记者",
            "本报通讯员",
            "文章来源",
            "返回首页",
            "NewsShare",
            "<p",
            "&lt;",
            "图片来源",
        ):
            assert marker not in r["body"], (marker, r["key"])
        for line in r["body"].split("\n"):
            assert line == line.strip(" \u3000\xa0") and line, (r["key"], line)
        if r["derived_fields"]:
            assert set(r["derived_fields"]) <= {"title", "published_at"}
        if "published_at" in r["derived_fields"]:
            assert r["published_at_source"] in ("share_json", "info_code")
        if r["published_at_source"] == "info_code":
            assert r["published_at"].endswith("T16:00:00Z")  # midnight in Shanghai
    sources = Counter(r["published_at_source"] for r in expected)
    assert sources["share_json"] >= 2 and sources["info_code"] >= 2
    assert sum(1 for r in expected if not r["reachable"]) >= 2
    near = [r for r in expected if r["near_duplicate_of"]]
    assert len(near) >= 2
    by_code = {r["info_code"]: r for r in expected}
    for r in near:
        first = by_code[r["near_duplicate_of"]]
        assert first["near_duplicate_of"] is None
        assert first["published_at"] <= r["published_at"]
        assert first["body"] != r["body"]
    two = [r for r in expected if "emnews" in r["categories"] and len(r["categories"]) > 1]
    assert len(two) >= 2
    assert any(r["images"] and r["images"][0]["caption"] is None for r in expected)
    assert any(r["images"] and r["images"][0]["caption"] for r in expected)
    assert any(r["correspondents"] for r in expected)


def test_real_samples_are_included(
    site_dir: Path, expected: list[dict[str, Any]], manifest: dict[str, Any]
) -> None:
    for name in (SEED_POST, UNDATED_POST, "2021-12-01-init.md"):
        assert (site_dir / "posts" / name).read_bytes() == (sample_posts_dir() / name).read_bytes()
    assert (site_dir / "www" / MAIN / SEED_PATH.lstrip("/")).is_file()
    keys = {r["key"] for r in expected}
    if manifest["samples_expected"]:
        assert "finews:NW202202182281010830" in keys
    else:
        assert "finews:NW202202182281010830" not in keys


def test_same_seed_gives_the_same_bytes(tmp_path: Path, site_dir: Path) -> None:
    again = tmp_path / "again"
    build_site(again, articles=300, seed=SEED)

    def tree(root: Path) -> dict[str, bytes]:
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*")
            if p.is_file() and p.parts[len(root.parts)] in ("posts", "share", "www")
        }

    first, second = tree(site_dir), tree(again)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []
    for name in ("expected.jsonl", "manifest.json", "site.json"):
        assert (site_dir / name).read_bytes() == (again / name).read_bytes()
    other = tmp_path / "other"
    build_site(other, articles=300, seed=SEED + 1)
    assert (other / "expected.jsonl").read_bytes() != (site_dir / "expected.jsonl").read_bytes()


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href" and v]


def test_reachability_matches_a_walk_over_the_built_pages(
    site_dir: Path, expected: list[dict[str, Any]]
) -> None:
    """Follow every <a href> from the home page through the static files (an independent walk)."""
    root = site_dir / "www" / MAIN
    seen: set[str] = set()
    queue = ["https://finews.withounder.com/"]
    while queue:
        url = queue.pop()
        parts = urlsplit(url)
        if parts.netloc not in (MAIN, "finews.zning.me") or parts.path in seen:
            continue
        seen.add(parts.path)
        path = unquote(parts.path)
        file = root / (path.lstrip("/") + ("index.html" if path.endswith("/") else ""))
        if not file.is_file():
            continue
        parser = _Links()
        parser.feed(file.read_text(encoding="utf-8"))
        queue += [urljoin(url, href) for href in parser.hrefs]
    for r in expected:
        assert (urlsplit(r["url"]).path in seen) == r["reachable"] or (
            r["reachable"] and len(r["categories"]) > 1
        ), r["url"]


def test_rebuild_from_posts_changes_only_what_changed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    build_site(site, articles=40, seed=3)
    posts = load_posts(site / "posts")
    target = next(p for p in posts if p.id.startswith("NW") and "emnews" not in p.categories)
    page = site / "www" / MAIN / unquote(post_path(target)).lstrip("/")
    home = site / "www" / MAIN / "index.html"
    untouched = site / "www" / MAIN / unquote(post_path(posts[0])).lstrip("/")
    before = {p: p.stat().st_mtime_ns for p in (page, home, untouched)}
    old_text = page.read_text()

    target.title = target.title + "（更新）"
    target.body = target.body.replace("</p>", "（更新）</p>", 1)
    write_post(target, site / "posts")
    stats = build_site_from_posts(site / "posts", site)
    assert 1 <= stats["changed_files"] < 20
    assert page.read_text() != old_text and "（更新）" in page.read_text()
    assert untouched.stat().st_mtime_ns == before[untouched]
    assert page.stat().st_mtime_ns > before[page]  # Last-Modified moves even with the same now

    (site / "posts" / target.file_name).unlink()
    stats = build_site_from_posts(site / "posts", site)
    assert not page.exists() and stats["removed_files"] >= 1


# -- the proxy server -----------------------------------------------------------------------


def test_home_over_http(replica: ReplicaProcess) -> None:
    status, headers, body = fetch(replica, "http://finews.withounder.com/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert int(headers["Content-Length"]) == len(body)
    assert headers["ETag"] and headers["Last-Modified"]
    text = body.decode()
    assert '<h2 id="大众日报新闻">大众日报新闻</h2>' in text
    assert "/category/" not in text.split("<section>")[1]  # the home page links posts only


def test_post_over_http_https_and_alias_host(replica: ReplicaProcess) -> None:
    bodies = set()
    for url in (
        f"http://{MAIN}{SEED_PATH}",
        f"https://{MAIN}{SEED_PATH}",
        f"https://finews.zning.me{SEED_PATH}",
        f"http://finews.zning.me{SEED_PATH}?from=home",
    ):
        status, _headers, body = fetch(replica, url)
        assert status == 200, url
        bodies.add(body)
    assert len(bodies) == 1
    assert "峄城精准监督护航营商环境" in bodies.pop().decode()
    log = wait_for_log(replica, f"https://finews.zning.me{SEED_PATH}")
    assert [(r["method"], r["status"]) for r in log] == [("GET", 200)]


def test_category_page_in_both_forms(replica: ReplicaProcess, site_dir: Path) -> None:
    status, _h, body = fetch(replica, f"https://{MAIN}/category/dazhongribao.html")
    assert status == 200
    text = body.decode()
    assert "<title>光大证券研究新闻 - 金融消息</title>" in text  # the hand-written, wrong title
    assert "NW202202182281010830.html" in text
    status, _h, body = fetch(replica, f"https://{MAIN}/dazhongribao/")
    assert status == 200 and "NW202202182281010830.html" in body.decode()
    status, _h, _b = fetch(replica, f"http://{MAIN}/category/dazhongribao.html?from=post")
    assert status == 200
    spaced = sorted(p.name for p in (site_dir / "www" / MAIN / "category").glob("* *.html"))
    assert spaced, "a category slug with a space"
    url = f"https://{MAIN}/category/" + spaced[0].replace(" ", "%20")
    status, _h, body = fetch(replica, url)
    assert status == 200 and "<li><a href=" in body.decode()


def test_share_page_and_json(replica: ReplicaProcess, expected: list[dict[str, Any]]) -> None:
    status, _h, body = fetch(
        replica, "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202202182281010830"
    )
    assert status == 200
    page = body.decode()
    assert "/NewsData/GetNewsText.do?id=" in page and "峄城" not in page
    for host in ("finews.zning.xyz", "choicewzp1.eastmoney.com"):
        status, headers, body = fetch(
            replica, f"https://{host}/NewsData/GetNewsText.do?id=NW202202182281010830"
        )
        assert status == 200 and headers["Content-Type"] == "application/json; charset=utf-8"
        doc = json.loads(body)
        assert doc["title"] == "峄城精准监督护航营商环境"
        assert doc["showtime"] == "2022-02-18 10:01:44"
        assert doc["text"].startswith("<p>□ 本报记者张环泽")
    digest_only = next(
        r
        for r in expected
        if r["share_url"] and r["info_code"] and not r["info_code"].startswith("NW")
    )
    status, _h, body = fetch(
        replica, f"http://finews.zning.xyz/NewsData/GetNewsText.do?id={digest_only['info_code']}"
    )
    doc = json.loads(body)
    assert "content" in doc and "text" not in doc  # rolling news: the older key
    status, _h, body = fetch(
        replica, "http://finews.zning.xyz/NewsData/GetNewsText.do?id=NW000000000000000000"
    )
    assert status == 200 and json.loads(body)["success"] is False


def test_missing_page_is_a_404_page(replica: ReplicaProcess) -> None:
    status, _h, body = fetch(replica, f"https://{MAIN}/emnews/2021/11/30/202111302206000000.html")
    assert status == 404
    text = body.decode()
    assert "404 找不到页面" in text and "window.location" in text
    status, _h, _b = fetch(
        replica, f"http://{MAIN}/emnews/2021/12/emnews/"
    )  # a dead relative back link
    assert status == 404


def test_conditional_requests(replica: ReplicaProcess) -> None:
    url = f"https://{MAIN}/feed.xml"
    status, headers, body = fetch(replica, url)
    assert status == 200 and headers["Content-Type"] == "application/xml; charset=utf-8"
    assert fetch(replica, url, {"If-None-Match": headers["ETag"]})[0] == 304
    assert fetch(replica, url, {"If-None-Match": '"stale"'})[0] == 200
    assert fetch(replica, url, {"If-Modified-Since": headers["Last-Modified"]})[0] == 304
    older = email.utils.formatdate(
        email.utils.parsedate_to_datetime(headers["Last-Modified"]).timestamp() - 60, usegmt=True
    )
    assert fetch(replica, url, {"If-Modified-Since": older})[0] == 200
    feed = ET.fromstring(body)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = feed.findall("a:entry", ns)
    assert len(entries) == 10
    for entry in entries:
        assert entry.findtext("a:id", namespaces=ns, default="").startswith(f"https://{MAIN}/")
        assert entry.findtext("a:content", namespaces=ns, default="").startswith("<")


def test_third_party_hosts_get_502(replica: ReplicaProcess) -> None:
    assert (
        fetch(replica, "http://finance.eastmoney.com/news/1344,202205262391921712.html")[0] == 502
    )
    with pytest.raises(urllib.error.URLError):
        fetch(replica, "https://finance.eastmoney.com/news/1344,202205262391921712.html")
    log = wait_for_log(replica, "finance.eastmoney.com:443")
    assert [(r["method"], r["status"]) for r in log] == [("CONNECT", 502)]


def test_folder_without_slash_redirects(replica: ReplicaProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=10)
    conn.request("GET", f"http://{MAIN}/emnews")
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 301 and resp.getheader("Location") == "/emnews/"


def test_keep_alive_plain_and_inside_a_tunnel(replica: ReplicaProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=10)
    for _ in range(3):
        conn.request("GET", f"http://{MAIN}/feed.xml")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read()
    sock = conn.sock
    conn.request("HEAD", f"http://{MAIN}/")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b"" and conn.sock is sock
    conn.close()

    tls = http.client.HTTPSConnection(
        "127.0.0.1", replica.port, timeout=10, context=ssl._create_unverified_context()
    )
    tls.set_tunnel(MAIN, 443)
    for path in ("/", SEED_PATH, "/nope.html"):
        tls.request("GET", path)
        resp = tls.getresponse()
        resp.read()
        assert resp.status == (404 if path == "/nope.html" else 200)
    tls.close()
    records = wait_for_log(replica, f"https://{MAIN}/nope.html")
    assert [r["status"] for r in records] == [404]


def test_certificate_covers_every_replica_host(replica: ReplicaProcess, site_dir: Path) -> None:
    ctx = ssl.create_default_context(cafile=str(site_dir / "tls" / "replica.pem"))
    for host in (MAIN, "finews.zning.me", "finews.zning.xyz", "choicewzp1.eastmoney.com"):
        conn = http.client.HTTPSConnection("127.0.0.1", replica.port, timeout=10, context=ctx)
        conn.set_tunnel(host, 443)
        conn.request("GET", "/")
        resp = conn.getresponse()  # the handshake verified the chain and the host name
        resp.read()
        conn.close()


def test_each_page_fetched_once_is_logged_once(
    replica: ReplicaProcess, manifest: dict[str, Any]
) -> None:
    pages = [u for u in manifest["pages"] if "/category/" in u][:5]
    for url in pages:
        assert fetch(replica, url.replace("https://", "http://", 1) + "?once=1")[0] == 200
    for url in pages:
        logged = wait_for_log(replica, url.replace("https://", "http://", 1) + "?once=1")
        assert len(logged) == 1 and logged[0]["bytes"] > 0


def test_throughput_on_keep_alive_connections(replica: ReplicaProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=10)
    started = time.perf_counter()
    n = 500
    for _ in range(n):
        conn.request("GET", f"http://{MAIN}/assets/css/style.css")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
    rate = n / (time.perf_counter() - started)
    conn.close()
    assert rate > 200, f"{rate:.0f} requests/s"


# -- the process helper -----------------------------------------------------------------------


def test_start_failure_reports_the_childs_stderr(tmp_path: Path) -> None:
    with pytest.raises(ReplicaStartError, match="build the site first"):
        ReplicaProcess.start(tmp_path / "missing")


def test_stop_is_clean(site_dir: Path) -> None:
    proc = ReplicaProcess.start(site_dir)
    assert fetch(proc, f"http://{MAIN}/")[0] == 200
    assert proc.stop() == 0
    with pytest.raises(urllib.error.URLError):
        fetch(proc, f"http://{MAIN}/")
