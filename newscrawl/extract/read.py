"""What one downloaded page or share JSON gives, in one call: the unit of work
the spider hands to a parse process (:mod:`newscrawl.extract.pool`).

Pure and picklable both ways: bytes in, plain dataclasses out. The page is
decoded and parsed once, here: its links (absolute, ``<base href>`` applied)
and, for a post page, its fields. The spider then only decides what to follow
and what to yield, so the crawler process spends no time on HTML at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from parsel import Selector
from w3lib.encoding import html_to_unicode
from w3lib.html import get_base_url

from newscrawl.extract.pages import classify_bad_page
from newscrawl.extract.post import PostFields, parse_post_page
from newscrawl.extract.share import ShareFields, classify_bad_share, parse_share_json
from newscrawl.urls import absolute_url

#: what kind of page is read (the spider's routing decides)
LIST = "list"
POST = "post"
FEED = "feed"

#: hrefs that never lead to a page
_NOT_PAGES = ("#", "javascript:", "mailto:")
_FEED_LINKS = "//*[local-name()='entry']/*[local-name()='link']/@href"
#: how much of a page ``<base href>`` is looked for in (what Scrapy reads)
_BASE_CHARS = 4096


@dataclass(frozen=True, slots=True)
class PageRead:
    """A page, read: ``links`` (absolute, as ``response.urljoin`` makes them,
    in page order, repeats left out);
    for a post page ``post`` (None when it is no article) and ``bad`` (why
    not: a :func:`~newscrawl.extract.pages.classify_bad_page` reason, or None
    when the page is simply not an article)."""

    links: tuple[str, ...]
    post: PostFields | None = None
    bad: str | None = None
    #: the canonical form of each link and declared URL, when asked for
    canonical: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ShareRead:
    """A share JSON answer, read: its fields, or why there are none."""

    share: ShareFields | None
    bad: str | None = None


def decode_page(body: bytes, encoding: str) -> str:
    """The page's text as Scrapy's ``TextResponse.text`` gives it (BOM first,
    then ``encoding``; undecodable bytes replaced).

    >>> decode_page("新闻".encode("gbk"), "gbk")
    '新闻'
    >>> decode_page(b"\\xef\\xbb\\xbfok", "gbk")
    'ok'
    """
    return html_to_unicode(f"charset={encoding}", body)[1]


def read_page(
    body: bytes,
    encoding: str,
    url: str,
    kind: str,
    canonical: Callable[[str], str] | None = None,
) -> PageRead:
    """Decode and parse one page (``kind``: :data:`LIST`, :data:`POST` or
    :data:`FEED`) and return its links, and for a post page its fields;
    with ``canonical`` (the site's ``canonical_url``), the canonical form
    of each link and declared URL too.

    >>> html = '''<html><head><base href="https://finews.withounder.com/x/"></head>
    ... <body><a href="a.html">a</a> <a href=" a.html ">again</a> <a href="#top">top</a>
    ... <a href="javascript:void(0)">js</a> <a href="/b/">b</a></body></html>'''
    >>> page = read_page(html.encode(), "utf-8", "http://finews.withounder.com/", LIST)
    >>> page.links
    ('https://finews.withounder.com/x/a.html', 'https://finews.withounder.com/b/')
    >>> page.post is None and page.bad is None
    True
    >>> read_page(b"", "utf-8", "https://finews.withounder.com/a/1.html", POST).bad
    'empty'
    """
    text = decode_page(body, encoding)
    try:
        selector = Selector(text=text, type="xml" if kind == FEED else "html")
    except ValueError:  # nothing parsable (e.g. only whitespace or a NUL byte)
        selector = None
    links = _links(selector, text, url, encoding, kind) if selector is not None else ()
    post = parse_post_page(text, url, selector) if kind == POST and selector is not None else None
    forms: dict[str, str] = {}
    if canonical is not None:
        for link in (*links, *(post.declared_urls if post is not None else ())):
            try:
                forms[link] = canonical(link)
            except ValueError:  # no URL at all (``http://[::1``): the crawler says so
                continue
    if kind != POST:
        return PageRead(links, canonical=forms)
    bad = None if post is not None else classify_bad_page(text)
    return PageRead(links, post, bad, forms)


def _links(selector: Selector, text: str, url: str, encoding: str, kind: str) -> tuple[str, ...]:
    if kind == FEED:
        hrefs = selector.xpath(_FEED_LINKS).getall()
        base = url
    else:
        hrefs = selector.css("a::attr(href)").getall()
        try:
            base = get_base_url(text[:_BASE_CHARS], url, encoding)
        except ValueError:  # a <base href> that cannot be parsed
            base = url
    found: dict[str, None] = {}
    for href in hrefs:
        href = href.strip()
        if href and not href.startswith(_NOT_PAGES):
            found[absolute_url(base, href)] = None
    return tuple(found)


def read_share(body: bytes) -> ShareRead:
    """Read a share JSON answer.

    >>> read_share(b"not json").bad
    'invalid_json'
    """
    share = parse_share_json(body)
    return ShareRead(share, None if share is not None else classify_bad_share(body) or "no_text")
