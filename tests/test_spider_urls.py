"""An article's ``urls`` do not depend on the form of the URL it was fetched at.

Which form of a post's URL (alias host, http, a tracking query, a redirect)
reaches the crawler first depends on crawl order, and the canonical
fingerprinter fetches only that one; ``urls`` holds canonical forms only, so
two crawls of the same site record the same ``urls`` (``test_versions``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from newscrawl.items import Article
from newscrawl.sites import finews
from newscrawl.spiders.finews import FinewsSpider
from tests.crawling import callback_output

GOLDEN = Path(__file__).resolve().parent / "golden"
# a post without a share link: the spider yields its article at once
PAGE = GOLDEN / "2021-12-08-202112082206672930.html"
URL = "https://finews.withounder.com/emnews/2021/12/08/202112082206672930.html"
ALIAS = URL.replace("finews.withounder.com", "finews.zning.me")

FORMS = {
    "canonical": (URL, []),
    "http": (URL.replace("https://", "http://"), []),
    "alias host, tracking query": (ALIAS + "?from=home&utm_source=wx", []),
    "redirected from the alias host over http": (URL, [ALIAS.replace("https://", "http://")]),
}


def _article(url: str, redirect_urls: list[str]) -> Article:
    spider = FinewsSpider.from_crawler(get_crawler(FinewsSpider))
    request = Request(url, meta={"redirect_urls": redirect_urls} if redirect_urls else {})
    response = HtmlResponse(
        url, body=PAGE.read_bytes(), headers={"Content-Type": "text/html"}, request=request
    )
    (article,) = [
        out for out in callback_output(spider, spider.parse(response)) if isinstance(out, Article)
    ]
    return article


@pytest.mark.parametrize("form", list(FORMS))
def test_urls_hold_canonical_forms_whatever_form_was_fetched(form: str) -> None:
    """The page also declares its alias-host form (og:url): one entry too."""
    article = _article(*FORMS[form])
    assert article.url == URL
    assert article.urls == [URL]


def test_a_link_that_is_no_url_does_not_cost_the_page_its_article() -> None:
    """``http://[::1`` makes URL parsers raise: the link is left alone (it
    cannot be requested), the page's other links and its article are kept."""
    page = PAGE.read_text(encoding="utf-8").replace(
        "</body>", '<a href="http://[::1">not a URL</a></body>'
    )
    assert 'href="http://[::1"' in page
    spider = FinewsSpider.from_crawler(get_crawler(FinewsSpider))
    response = HtmlResponse(
        URL, body=page.encode("utf-8"), headers={"Content-Type": "text/html"}, request=Request(URL)
    )
    out = callback_output(spider, spider.parse(response))
    assert [item.url for item in out if isinstance(item, Article)] == [URL]
    requested = [req.url for req in out if isinstance(req, Request)]
    assert requested and all("[::1" not in url for url in requested)


def test_home_and_post_links_are_requested_once_category_links_each_time() -> None:
    """A second page with the same links makes no second Request for the home
    page or a post (the dupefilter would drop it), but again one for each
    category (the incremental middleware may drop a category link from one
    page and follow it from another)."""
    site = "https://finews.withounder.com"
    links = [
        "/",
        "/emnews/2021/12/08/202112082206672930.html",
        "http://finews.zning.me/emnews/2021/12/08/202112082206672930.html?from=x",  # same post
        "/emnews/2021/12/08/202112082206735975.html",
        "/category/emnews.html",
    ]
    body = "".join(f'<a href="{href}">x</a>' for href in links)
    page = f"<html><body>{body}</body></html>".encode()
    spider = FinewsSpider.from_crawler(get_crawler(FinewsSpider))

    async def two_lists() -> AsyncIterator[Any]:
        for url in (f"{site}/category/a.html", f"{site}/category/b.html"):
            response = HtmlResponse(
                url, body=page, headers={"Content-Type": "text/html"}, request=Request(url)
            )
            async for out in spider.parse(response):
                yield out

    requests = [out for out in callback_output(spider, two_lists()) if isinstance(out, Request)]
    made = sorted((finews.route(r.url), finews.canonical_url(r.url)) for r in requests)
    assert made == [
        (finews.CATEGORY, f"{site}/category/emnews.html"),
        (finews.CATEGORY, f"{site}/category/emnews.html"),
        (finews.HOME, f"{site}/"),
        (finews.POST, f"{site}/emnews/2021/12/08/202112082206672930.html"),
        (finews.POST, f"{site}/emnews/2021/12/08/202112082206735975.html"),
    ]


@pytest.mark.parametrize(
    "share",
    [
        "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202202182281010830",
        "https://choicewzp1.eastmoney.com/html_News/NewsShare.html?infocode=NW202202182281010830",
        "//finews.zning.xyz/html_News/NewsShare.html?INFOCODE=NW202202182281010830&from=wx",
        "http://FINEWS.ZNING.XYZ:80/html_News/NewsShare.html?x=1&infoCode=NW202202182281010830",
    ],
)
def test_the_canonical_form_remembered_for_a_share_json_url_is_the_one_canonical_url_makes(
    share: str,
) -> None:
    url = finews.share_json_url(share)
    assert url is not None
    assert finews.canonical_url(url) == finews._canonical_url(url)
