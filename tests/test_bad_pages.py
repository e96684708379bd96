"""Bad pages and bad share answers: empty, truncated, the 404 page served as
200, enormous, invalid JSON. Each has a reason (``classify_bad_page`` /
``classify_bad_share``), never raises and never gives an article, whether
fed as text or as bytes through a real ``scrapy.http.HtmlResponse``, and the
spider turns none of them into an item."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
from scrapy.http import HtmlResponse, TextResponse
from scrapy.utils.test import get_crawler

from newscrawl.extract.pages import (
    EMPTY,
    INVALID_JSON,
    MAX_PAGE_CHARS,
    NO_TEXT,
    NOT_FOUND,
    TOO_LARGE,
    TRUNCATED,
    classify_bad_page,
)
from newscrawl.extract.post import parse_post_page
from newscrawl.extract.share import classify_bad_share, merge_share, parse_share_json
from newscrawl.items import Article
from newscrawl.replica.posts import load_posts, sample_posts_dir
from newscrawl.replica.render import render_404
from newscrawl.replica.site import Site
from newscrawl.spiders.finews import FinewsSpider
from tests.crawling import callback_output

GOLDEN = Path(__file__).resolve().parent / "golden"
SEED = GOLDEN / "2022-02-18-NW202202182281010830.html"
SEED_SHARE = GOLDEN / "2022-02-18-NW202202182281010830.share.json"
URL = "https://finews.withounder.com/dazhongribao/2022/02/18/NW202202182281010830.html"


def _seed() -> str:
    return SEED.read_text(encoding="utf-8")


def _not_found_page() -> str:
    return render_404(Site(load_posts(sample_posts_dir())))


def _cut(text: str, marker: str, after: bool = False) -> str:
    at = text.index(marker) + (len(marker) if after else 0)
    return text[:at]


def bad_pages() -> dict[str, tuple[str, str]]:
    """name -> (page text, expected reason)."""
    seed = _seed()
    huge = seed.replace(
        "<p>“以前", "<p>" + "很长的段落。" * (MAX_PAGE_CHARS // 6) + "</p><p>“以前", 1
    )
    return {
        "empty": ("", EMPTY),
        "whitespace": (" \r\n\t ", EMPTY),
        "cut in the head": (seed[:500], TRUNCATED),
        "cut after the title": (_cut(seed, "</h1>", after=True), TRUNCATED),
        "cut mid-body": (seed[: len(seed) // 2], TRUNCATED),
        "cut before the source line": (_cut(seed, '<p class="em_media">'), TRUNCATED),
        "cut inside the tags line": (_cut(seed, "<em>大众日报新闻"), TRUNCATED),
        "the 404 page as 200": (_not_found_page(), NOT_FOUND),
        "enormous": (huge, TOO_LARGE),
    }


BAD_PAGES = bad_pages()


@pytest.mark.parametrize("name", list(BAD_PAGES))
def test_bad_page_has_a_reason_and_gives_no_article(name: str) -> None:
    text, reason = BAD_PAGES[name]
    assert classify_bad_page(text) == reason
    started = time.perf_counter()
    assert parse_post_page(text, URL) is None
    assert time.perf_counter() - started < 1.0  # refused before parsing, even when enormous


@pytest.mark.parametrize("name", list(BAD_PAGES))
def test_bad_page_bytes_through_a_real_response(name: str) -> None:
    text, reason = BAD_PAGES[name]
    response = HtmlResponse(URL, body=text.encode("utf-8"), headers={"Content-Type": "text/html"})
    assert classify_bad_page(response.text) == reason
    assert parse_post_page(response.text, response.url) is None


def test_good_pages_have_no_reason() -> None:
    for page in sorted(GOLDEN.glob("*.html")):
        assert classify_bad_page(page.read_text(encoding="utf-8")) is None, page.name
    # a page cut after its article section is still whole where it matters
    seed = _seed()
    tail_cut = _cut(seed, "<footer>")
    assert classify_bad_page(tail_cut) is None
    whole, cut = parse_post_page(seed, URL), parse_post_page(tail_cut, URL)
    assert whole is not None and cut is not None
    assert (cut.title, cut.body, cut.tags) == (whole.title, whole.body, whole.tags)


def test_a_post_about_404_is_not_the_404_page() -> None:
    seed = _seed().replace("峄城精准监督护航营商环境", "404家企业获批 404 找不到页面的原因")
    assert classify_bad_page(seed) is None
    fields = parse_post_page(seed, URL)
    assert fields is not None and fields.title == "404家企业获批 404 找不到页面的原因"


def _share_cases() -> dict[str, tuple[bytes, str]]:
    share = SEED_SHARE.read_bytes()
    return {
        "empty": (b"", EMPTY),
        "whitespace": (b" \n", EMPTY),
        "an HTML error page": (b"<html><body>502 Bad Gateway</body></html>", INVALID_JSON),
        "truncated JSON": (share[: len(share) // 2], INVALID_JSON),
        "JSON null": (b"null", NO_TEXT),
        "JSON list": (b"[1, 2]", NO_TEXT),
        "empty object": (b"{}", NO_TEXT),
        "empty text": (b'{"text": "", "success": true}', NO_TEXT),
        "text not a string": (b'{"text": {"p": 1}}', NO_TEXT),
        "the replica's not-found answer": (b'{"success": false, "text": null}', NO_TEXT),
        "enormous": (b'{"text": "' + b"x" * MAX_PAGE_CHARS + b'"}', TOO_LARGE),
        "deeply nested": (b"[" * 100_000 + b"]" * 100_000, INVALID_JSON),
    }


SHARE_CASES = _share_cases()


@pytest.mark.parametrize("name", list(SHARE_CASES))
def test_bad_share_answer_has_a_reason_and_keeps_the_post(name: str) -> None:
    data, reason = SHARE_CASES[name]
    assert classify_bad_share(data) == reason
    assert parse_share_json(data) is None
    # through a real response, as the spider gets it
    response = TextResponse(
        "https://finews.zning.xyz/NewsData/GetNewsText.do?id=NW202202182281010830",
        body=data,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert parse_share_json(response.body) is None
    # the post alone still makes its article
    post = parse_post_page(_seed(), URL)
    assert post is not None
    merged = merge_share(post, None)
    assert merged.body == post.body and merged.title == "峄城精准监督护航营商环境"


def test_the_good_share_answer_has_no_reason() -> None:
    assert classify_bad_share(SEED_SHARE.read_bytes()) is None
    assert json.loads(SEED_SHARE.read_bytes())["text"]


@pytest.mark.parametrize("name", list(BAD_PAGES))
def test_the_spider_stores_no_article_from_a_bad_page(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The real spider with a real crawler: a bad post page is a stat and a
    log line, never an item."""
    text, reason = BAD_PAGES[name]
    # read inline: the parse process is the same function (tests/test_parse_pool.py)
    crawler = get_crawler(FinewsSpider, {"NEWSCRAWL_PARSE_PROCESSES": 0})
    spider = FinewsSpider.from_crawler(crawler)
    response = HtmlResponse(URL, body=text.encode("utf-8"), headers={"Content-Type": "text/html"})
    with caplog.at_level(logging.WARNING, logger="newscrawl"):
        out = callback_output(spider, spider.parse(response))
    assert not [item for item in out if isinstance(item, Article)]
    assert crawler.stats is not None
    stats = crawler.stats.get_stats()
    counted = {
        k for k in stats if k in (f"newscrawl/pages/{reason}", "newscrawl/pages/not_article")
    }
    assert counted, stats
    assert any(URL in record.getMessage() for record in caplog.records)
