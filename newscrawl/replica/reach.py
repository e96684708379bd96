"""Which posts a link-following crawler can reach from the home page.

The model of the link graph, from what the site is made of (never from
rendered pages): the home page lists the newest posts of each tag; a
category page (``/category/<slug>.html``) and its folder form (``/<slug>/``)
list every post of the category; a post links wherever its Markdown links
point (every ``<a href>`` of its rendered content), resolved against the post's URL, so a relative
``../emnews/`` under ``/emnews/2021/12/08/`` leads nowhere. Only ``<a href>``
links count: ``<link rel="prev/next">``, the feed and share pages do not.
"""

from __future__ import annotations

import html
import re
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlsplit

from newscrawl.replica.kramdown import render_markdown
from newscrawl.replica.posts import Post
from newscrawl.replica.site import ALIAS_HOST, MAIN_HOST, Site

_HREF_RE = re.compile(r'<a\s[^>]*?href="([^"]*)"')
_LOCAL_HOSTS = frozenset({MAIN_HOST, ALIAS_HOST})


def content_links(body: str) -> list[str]:
    """The ``href`` of every ``<a>`` in a post's rendered content, as written.

    Rendered by the same converter as the pages, so URLs with spaces or
    brackets (``category/21shijijingjibaodao  nancailicaitong.html``) come
    out exactly as a browser sees them.

    >>> content_links("[返回X](//h/category/a  b(c).html)｜[返回首页](//h/)")
    ['//h/category/a  b(c).html', '//h/']
    """
    return [html.unescape(m[1]) for m in _HREF_RE.finditer(render_markdown(body))]


def page_key(url: str) -> tuple[str, str] | None:
    """The page a URL on the site names: ("home", ""), ("category", slug), ("folder", slug),
    ("post", path) or None for other hosts."""
    parts = urlsplit(url)
    if parts.netloc.lower() not in _LOCAL_HOSTS:
        return None
    path = unquote(parts.path) or "/"
    if path == "/":
        return ("home", "")
    m = re.fullmatch(r"/category/(.+)\.html", path)
    if m:
        return ("category", m[1])
    m = re.fullmatch(r"/([^/]+)/", path)
    if m:
        return ("folder", m[1])
    return ("post", parts.path)


#: a page of the link graph: ("home", ""), ("category", slug), ("folder", slug), ("post", path)
PageKey = tuple[str, str]


@dataclass
class Walk:
    """What a link-following crawler reaches: ``id()`` of the posts it can store, and
    every page it fetches (blocked pages included: fetched, but they give nothing)."""

    posts: set[int] = field(default_factory=set)
    pages: set[PageKey] = field(default_factory=set)


def walk(site: Site, blocked: Collection[PageKey] = frozenset()) -> Walk:
    """Walk the link graph from the home page.

    A ``blocked`` page (one that fails for good or is a bad page) is fetched but
    yields no links, and a blocked post is not stored. A category page and its
    folder form are one page to a crawler (one canonical URL), so block both.
    """
    by_path = {site.path(p): p for p in site.posts}
    categories = site.categories()
    start: PageKey = ("home", "")
    result = Walk(pages={start})
    queue: deque[PageKey] = deque([start])

    def visit(key: PageKey | None) -> None:
        if key is not None and key not in result.pages:
            result.pages.add(key)
            queue.append(key)

    while queue:
        key = queue.popleft()
        if key in blocked:
            continue
        kind, value = key
        if kind == "home":
            for posts in site.tags().values():
                for post in posts[: site.config.home_per_tag]:
                    visit(("post", site.path(post)))
        elif kind in ("category", "folder"):
            for post in categories.get(value, []):
                visit(("post", site.path(post)))
        elif kind == "post" and value in by_path:
            found: Post = by_path[value]
            result.posts.add(id(found))
            base = site.url(found)
            for href in content_links(found.body):
                visit(page_key(urljoin(base, href)))
    return result


def reachable_posts(site: Site) -> set[int]:
    """``id()`` of every post reachable from the home page through ``<a href>`` links."""
    return walk(site).posts
