"""A finews post page in, its article fields out.

``parse_post_page`` reads what the page itself says; the fallbacks that need
the share JSON or the id (a title from the digest, a date from the id) are
``share.merge_share``'s job, which the spider calls for every post, with or
without a share JSON.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from parsel import Selector

from newscrawl.extract.body import BodyFields, extract_body
from newscrawl.extract.dates import parse_datetime
from newscrawl.extract.pages import classify_bad_page
from newscrawl.extract.sources import source_from_tag
from newscrawl.extract.text import EDGE_SPACE, clean_lines, first_sentence
from newscrawl.items import NEWS, NOTICE
from newscrawl.sites.finews import CATEGORY_PAGE_RE, INFO_CODE_RE, POST_PATH_RE
from newscrawl.urls import absolute_url

logger = logging.getLogger(__name__)

#: where ``published_at`` came from
FROM_PAGE = "page"
FROM_SHARE_JSON = "share_json"
FROM_INFO_CODE = "info_code"
#: where ``source`` came from
SOURCE_LINE = "line"
SOURCE_TRAILING = "trailing"
SOURCE_DIGEST = "digest"
SOURCE_TAG = "tag"
SOURCE_SHARE = "share_json"
TAGS_PREFIX = "tags:"
OG_URL_XPATH = "//meta[@property='og:url']/@content"


@dataclass
class PostFields:
    """The fields of one post page (see the field conventions in the README)."""

    post_id: str
    info_code: str | None
    kind: str
    title: str = ""
    published_at: datetime | None = None  # aware, UTC
    published_at_source: str | None = None
    derived_fields: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    source: str | None = None
    #: SOURCE_LINE / SOURCE_TRAILING / SOURCE_DIGEST / SOURCE_TAG / SOURCE_SHARE
    source_origin: str | None = None
    authors: list[str] = field(default_factory=list)
    correspondents: list[str] = field(default_factory=list)
    body: str = ""
    summary: str = ""
    digest: str = ""
    images: list[dict[str, str | None]] = field(default_factory=list)
    share_url: str | None = None
    origin_url: str | None = None
    canonical_url: str | None = None
    declared_urls: list[str] = field(default_factory=list)
    category_links: list[str] = field(default_factory=list)
    outlinks: list[str] = field(default_factory=list)


def make_summary(digest: str, body: str) -> str:
    """The digest as written, else the body's first sentence.

    >>> make_summary("", "离岸人民币升至6.3512。为2018年以来最高。")
    '离岸人民币升至6.3512。'
    >>> make_summary("摘要一\\n摘要二", "正文。")
    '摘要一\\n摘要二'
    """
    return digest or first_sentence(body)


def post_id_of(url: str) -> str:
    """The file-name tail of a post URL: its last path segment without ``.html``.

    >>> post_id_of("https://finews.withounder.com/emnews/2021/12/08/202112082206672930.html?x=1")
    '202112082206672930'
    >>> post_id_of("https://finews.withounder.com/")
    ''
    """
    try:
        path = urlsplit(url).path
    except ValueError:
        return ""
    tail = unquote(path.rsplit("/", 1)[-1])
    return tail[: -len(".html")] if tail.endswith(".html") else ""


def category_slug(url: str) -> str | None:
    """The category a back link points to: ``/category/<slug>.html`` or the
    folder form ``/<slug>/`` (its last segment), percent-decoded.

    >>> category_slug("https://finews.withounder.com/category/dazhongribao.html")
    'dazhongribao'
    >>> category_slug("https://finews.withounder.com/category/21shijijingjibaodao%2021caijingAPP.html")
    '21shijijingjibaodao 21caijingAPP'
    >>> category_slug("https://finews.withounder.com/emnews/2021/12/emnews/")
    'emnews'
    >>> category_slug("https://finews.withounder.com/") is None
    True
    """
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    match = CATEGORY_PAGE_RE.match(path)
    if match:
        return unquote(match["slug"]) or None
    if path.endswith("/"):
        segment = path.rstrip("/").rsplit("/", 1)[-1]
        return unquote(segment) or None
    return None


def categories_from_path(url: str) -> list[str]:
    """The category segments of a post URL (those before the date).

    >>> categories_from_path("https://finews.withounder.com/emnews/2021/12/08/202112082206672930.html")
    ['emnews']
    >>> categories_from_path("https://finews.withounder.com/a/b%20c/2022/01/02/1.html")
    ['a', 'b c']
    >>> categories_from_path("https://finews.withounder.com/")
    []
    """
    try:
        path = urlsplit(url).path
    except ValueError:
        return []
    match = POST_PATH_RE.match(path)
    if match is None:
        return []
    return [unquote(cat) for cat in match["cats"].split("/") if cat]


def _text(node: Any) -> str:
    return " ".join(clean_lines("".join(node.itertext())))


def _head_date(selector: Selector) -> datetime | None:
    """``article:published_time``, else the JSON-LD ``datePublished``."""
    for value in selector.xpath("//meta[@property='article:published_time']/@content").getall():
        date = parse_datetime(value)
        if date is not None:
            return date
    for script in selector.xpath("//script[@type='application/ld+json']/text()").getall():
        try:
            data = json.loads(script)
        except ValueError:
            logger.debug("Unreadable JSON-LD block skipped")
            continue
        for item in data if isinstance(data, list) else [data]:
            published = item.get("datePublished") if isinstance(item, dict) else None
            if isinstance(published, str):
                date = parse_datetime(published)
                if date is not None:
                    return date
    return None


def _stamp_and_tags(section: Any) -> tuple[datetime | None, list[str]]:
    stamp: datetime | None = None
    tags: list[str] = []
    for small in section.iterchildren("small"):
        text = _text(small)
        if text.lower().startswith(TAGS_PREFIX):
            ems = small.xpath(".//em[not(ancestor::em)]")
            tags.extend(t for t in (_text(em) for em in ems) if t)
        elif stamp is None:
            stamp = parse_datetime(text)
    return stamp, tags


def _source(body: BodyFields, tags: list[str]) -> tuple[str | None, str | None]:
    if body.source:
        return body.source, SOURCE_LINE
    if body.trailing_source:
        return body.trailing_source, SOURCE_TRAILING
    if body.digest_source:
        return body.digest_source, SOURCE_DIGEST
    for tag in tags:
        name = source_from_tag(tag)
        if name:
            return name, SOURCE_TAG
    return None, None


def _declared_urls(selector: Selector, url: str) -> tuple[str | None, list[str]]:
    """The page's canonical link and every URL it declares (canonical link,
    og:url), made absolute against ``url`` when that is absolute.

    >>> head = '<link rel="canonical" href="/a/1.html"><meta property="og:url" content="https://h/b">'
    >>> _declared_urls(Selector(text=head), "https://finews.withounder.com/x/2.html?from=home")
    ('https://finews.withounder.com/a/1.html', ['https://finews.withounder.com/a/1.html', 'https://h/b'])
    """
    absolute = url.startswith(("http://", "https://"))
    canonical = selector.xpath("//link[@rel='canonical']/@href").get()
    canonical = canonical.strip(EDGE_SPACE) if canonical else None
    if canonical and absolute:
        canonical = absolute_url(url, canonical)
    og_urls = (v.strip(EDGE_SPACE) for v in selector.xpath(OG_URL_XPATH).getall())
    declared = dict.fromkeys([canonical] if canonical else [])
    declared.update(
        dict.fromkeys(absolute_url(url, og) if absolute else og for og in og_urls if og)
    )
    return canonical or None, list(declared)


def parse_post_page(html: str, url: str, selector: Selector | None = None) -> PostFields | None:
    """The fields of a post page; ``None`` for a page that is not a post (no
    ``<section>`` with an ``<h1>``: the home page, a 404 page, a category
    page) and for a bad page (empty, truncated, too large, the 404 page
    served as 200: see ``pages.classify_bad_page``). Never raises on odd HTML.

    ``selector``: ``html`` already parsed (a crawl's ``response.selector``, which
    the spider also reads links from), so the page is not parsed a second time;
    it is only read, never changed."""
    reason = classify_bad_page(html)
    if reason is not None:
        logger.debug("Bad page (%s), not read: %s", reason, url)
        return None
    try:
        selector = selector if selector is not None else Selector(text=html)
    except ValueError:
        logger.debug("Unparsable page: %s", url)
        return None
    root = selector.root
    if root is None or not isinstance(root.tag, str):
        return None
    section = next((s for s in root.iter("section") if s.find("h1") is not None), None)
    if section is None:
        return None
    canonical, declared = _declared_urls(selector, url)
    post_id = post_id_of(url) or (post_id_of(canonical) if canonical else "")
    base = url if url.startswith(("http://", "https://")) else (canonical or url)
    is_article = bool(INFO_CODE_RE.match(post_id))
    body = extract_body(section, base)
    stamp, tags = _stamp_and_tags(section)
    published_at = stamp or _head_date(selector)
    slugs = (category_slug(link) for link in body.category_links)
    categories = list(dict.fromkeys(slug for slug in slugs if slug))
    if not categories:
        categories = categories_from_path(base) or (
            categories_from_path(canonical) if canonical else []
        )
    source, source_origin = _source(body, tags)
    digest = "\n".join(body.digest)
    return PostFields(
        post_id=post_id,
        info_code=post_id if is_article else None,
        kind=NEWS if is_article else NOTICE,
        title=_text(section.find("h1")),
        published_at=published_at,
        published_at_source=FROM_PAGE if published_at else None,
        categories=categories,
        tags=tags,
        source=source,
        source_origin=source_origin,
        authors=body.byline.authors,
        correspondents=body.byline.correspondents,
        body=body.body,
        summary=make_summary(digest, body.body),
        digest=digest,
        images=body.images,
        share_url=body.share_url,
        origin_url=body.origin_url,
        canonical_url=canonical,
        declared_urls=declared,
        category_links=body.category_links,
        outlinks=body.outlinks,
    )
