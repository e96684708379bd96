"""Fault plans: what goes wrong, per URL, when the replica proxy serves a built site.

A plan is ``<site>/faults.json``, written by :func:`plan_faults` (or by
``build_site(..., faults=RATE)``) and read by the proxy server when it starts
(``serve --no-faults`` ignores it). It holds:

- ``faults``: one :class:`Fault` per URL: an error status for the first
  ``times`` tries (``times`` null: every try), a connection reset before the
  response or in the middle of its body, a slow answer (``delay`` seconds,
  beyond a crawler's short download timeout), the page re-encoded in
  GBK/GB18030 with the charset only in ``<meta>`` (``header`` null) or behind a
  lying ``Content-Type`` charset, a 404 for an archived post still listed on
  its category page, a 200 that is the 404 page (soft 404), an empty 200, HTML
  cut in the middle, a share JSON cut in the middle, an enormous page, a gzip
  bomb, a redirect loop;
- ``links``: extra ``<a href>`` added to listing pages (query-string variants of
  pages, and the entries of the traps);
- ``traps``: URL families the server answers for any depth: endless pagination
  (``/page<N>/`` links ``/page<N+1>/``), an endless calendar
  (``/calendar/Y/M/D/archive.html`` links the day before), an endless redirect
  chain (``/go/…/hop.html?n=K`` redirects to ``n=K+1``), a redirect to another
  host, and a page robots.txt forbids;
- ``robots``: the main host's ``/robots.txt``;
- ``https_only``: every main-site request over http or through the alias host
  is redirected (301) to ``https://finews.withounder.com`` + the same path, as
  GitHub Pages does with "Enforce HTTPS" and a custom domain;
- ``expect_failed``: what a crawler must record as failed for good, each with
  the reason newscrawl's run record uses (``newscrawl/runs.py``): by ``url``
  (compare canonical URLs) or, for traps, by ``pattern`` (a regex on the URL).

Faults are matched on the page's identity, not on the URL form: the alias
host, http/https, the query string, ``index.html`` and the folder form of a
category page (``/<slug>/`` is ``/category/<slug>.html``) all hit the same
fault, and the tries of one page are counted together, as a crawler that
canonicalises URLs fetches one page once (plus its retries).

:func:`plan_faults` also rewrites ``expected.jsonl``: ``reachable`` stays the
fault-free link graph, ``storable`` says whether the article can still be
stored at all (a post that is permanently 503 cannot; one that fails twice
then answers can), and ``faults`` lists what touches the article. It walks
the link graph again with every page that fails for good blocked, so an
article reachable only through a dead category page is not storable either.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from newscrawl.replica.posts import (
    SHANGHAI,
    Post,
    category_page_path,
    folder_page_path,
    load_posts,
)
from newscrawl.replica.reach import PageKey, Walk, walk
from newscrawl.replica.share import share_code
from newscrawl.replica.site import (
    ALIAS_HOST,
    HOST_TREES,
    MAIN_HOST,
    SHARE_HOST,
    SHARE_JSON_DIR,
    Site,
    SiteConfig,
)

logger = logging.getLogger(__name__)

FAULTS_FILE = "faults.json"
PLAN_VERSION = 1

# -- fault kinds ----------------------------------------------------------------------
STATUS = "status"  # ``status`` for the first ``times`` tries, then the page
RESET = "reset"  # connection closed: ``where`` = "before" (no byte) or "mid" (half the body)
SLOW = "slow"  # the answer comes after ``delay`` seconds
CHARSET = "charset"  # GBK/GB18030 bytes; ``header`` None: no charset header, else that (a lie)
GONE = "gone"  # 404 with the 404 page: an archived post still listed
SOFT_404 = "soft_404"  # status 200, body of the 404 page
EMPTY = "empty"  # status 200, no body
TRUNCATED = "truncated"  # status 200, HTML cut in the middle of the content
INVALID_JSON = "invalid_json"  # share JSON cut in the middle
ENORMOUS = "enormous"  # status 200, ``size`` bytes
GZIP_BOMB = "gzip_bomb"  # Content-Encoding gzip, ``size`` bytes once decompressed
REDIRECT_LOOP = "redirect_loop"  # https main host -> http alias host -> https main host ...

# -- what a crawler records (newscrawl/runs.py reasons) ---------------------------------
TIMEOUT = "timeout"
CONNECTION_LOST = "connection_lost"
TOO_LARGE = "too_large"
DECOMPRESSION_BOMB = "decompression_bomb"
BAD_EMPTY = "bad_page:empty"  # newscrawl.extract.pages names the kinds of bad pages
BAD_TRUNCATED = "bad_page:truncated"
BAD_NOT_FOUND = "bad_page:not_found"
INVALID_SHARE_JSON = "bad_share:invalid_json"
LOOP = "redirect_loop"
REDIRECT_LIMIT = "redirect_limit"
OFFSITE = "offsite"
ROBOTS = "robots_txt"
TRAP = "trap"

# -- traps: URL families answered at any depth -----------------------------------------
PAGINATION_RE = re.compile(r"^/page(\d+)/(?:index\.html)?$")
CALENDAR_RE = re.compile(r"^/calendar/(\d{4})/(\d{2})/(\d{2})/archive\.html$")
HOP_RE = re.compile(r"^/go/\d{4}/\d{2}/\d{2}/hop\.html$")
JUMP_RE = re.compile(r"^/out/\d{4}/\d{2}/\d{2}/jump\.html$")
#: where the redirect to another host points (never fetched by a well-behaved crawler)
JUMP_TARGET = "http://intranet.example.net/admin/"
ROBOTS_TXT = "User-agent: *\nDisallow: /private/\n"

SHARE_JSON_PATH = "/" + SHARE_JSON_DIR
_HREF_RE = re.compile(r'<a\s[^>]*?href="([^"]*)"')
_META_CHARSET = '<meta charset="UTF-8">'


@dataclass
class Fault:
    """One URL's fault; ``expect`` is the reason a crawler records when the URL
    fails for good (None: a crawler that retries gets the page in the end)."""

    url: str
    kind: str
    times: int | None = None
    status: int | None = None
    delay: float | None = None
    where: str | None = None
    charset: str | None = None
    header: str | None = None
    size: int | None = None
    retry_after: int | None = None
    expect: str | None = None
    article: str | None = None  # the expected article's key, when the URL is one's

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class FaultPlan:
    """A whole plan (see the module doc); ``save``/``load`` use ``<site>/faults.json``."""

    seed: int = 1
    rate: float = 0.12
    slow_seconds: float = 3.0
    faults: list[Fault] = field(default_factory=list)
    links: dict[str, list[str]] = field(default_factory=dict)
    traps: bool = True
    robots: str = ROBOTS_TXT
    https_only: bool = False
    expect_failed: list[dict[str, str]] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": PLAN_VERSION,
            "seed": self.seed,
            "rate": self.rate,
            "slow_seconds": self.slow_seconds,
            "counts": self.counts,
            "robots": self.robots,
            "https_only": self.https_only,
            "traps": self.traps,
            "links": self.links,
            "expect_failed": self.expect_failed,
            "faults": [f.to_json() for f in self.faults],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultPlan:
        if data.get("version") != PLAN_VERSION:
            raise ValueError(f"unknown fault plan version {data.get('version')!r}")
        return cls(
            seed=int(data.get("seed", 1)),
            rate=float(data.get("rate", 0.0)),
            slow_seconds=float(data.get("slow_seconds", 3.0)),
            faults=[Fault.from_json(f) for f in data.get("faults", [])],
            links={k: list(v) for k, v in data.get("links", {}).items()},
            traps=bool(data.get("traps", False)),
            robots=str(data.get("robots", "")),
            https_only=bool(data.get("https_only", False)),
            expect_failed=list(data.get("expect_failed", [])),
            counts=dict(data.get("counts", {})),
        )

    def save(self, site_dir: Path) -> Path:
        path = Path(site_dir) / FAULTS_FILE
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1), "utf-8")
        return path

    @classmethod
    def load(cls, site_dir: Path) -> FaultPlan | None:
        """The site's plan, or None when it has none."""
        path = Path(site_dir) / FAULTS_FILE
        if not path.is_file():
            return None
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


# -- identity -------------------------------------------------------------------------


def fault_key(tree: str, path: str, query: str = "") -> str:
    """The page a request names, as faults are matched: the static tree, the
    decoded path (``index.html`` and the folder form of a category folded), and
    for the share JSON its ``id``.

    >>> fault_key("finews.withounder.com", "/a%20b/index.html", "from=x")
    'finews.withounder.com/category/a b.html'
    >>> fault_key("finews.withounder.com", "/index.html")
    'finews.withounder.com/'
    >>> fault_key("finews.withounder.com", "/emnews/2021/12/08/1.html", "x=1")
    'finews.withounder.com/emnews/2021/12/08/1.html'
    >>> fault_key("finews.zning.xyz", "/NewsData/GetNewsText.do", "id=NW1&_=2")
    'finews.zning.xyz/NewsData/GetNewsText.do?id=NW1'
    """
    path = unquote(path or "/", errors="replace")
    if path.endswith("/index.html"):
        path = path[: -len("index.html")]
    folder = re.fullmatch(r"/([^/]+)/", path)
    if folder and tree == MAIN_HOST and not PAGINATION_RE.match(path):
        path = f"/category/{folder[1]}.html"
    if path == SHARE_JSON_PATH:
        code = dict(parse_qsl(query)).get("id", "")
        return f"{tree}{path}?id={code}"
    return f"{tree}{path}"


def url_key(url: str) -> str | None:
    """:func:`fault_key` of a URL on a replica host (None for other hosts).

    >>> url_key("http://finews.zning.me/category/x.html?page=2")
    'finews.withounder.com/category/x.html'
    >>> url_key("https://choicewzp1.eastmoney.com/NewsData/GetNewsText.do?id=NW1")
    'finews.zning.xyz/NewsData/GetNewsText.do?id=NW1'
    >>> url_key("http://finance.eastmoney.com/a.html") is None
    True
    """
    parts = urlsplit(url)
    tree = HOST_TREES.get((parts.hostname or "").lower())
    if tree is None:
        return None
    return fault_key(tree, parts.path, parts.query)


# -- what a faulty page looks like ------------------------------------------------------


def content_bounds(text: str) -> tuple[int, int]:
    """Where a page's own content lies: after its ``<h1>`` title (else the
    section start) up to the paragraph of its first back link (else the end of
    the section).

    >>> page = "<section><h1>T</h1><p>body</p><p><a href='/c'>返回C</a></p></section>"
    >>> a, b = content_bounds(page); page[a:b]
    '<p>body</p>'
    """
    start = text.find("<section>")
    start = 0 if start < 0 else start + len("<section>")
    h1 = text.find("</h1>", start)
    end = text.find("</section>", start)
    end = len(text) if end < 0 else end
    back = text.find("返回", start, end)
    if back >= 0:
        para = text.rfind("<p>", start, back)
        end = para if para >= 0 else back
    if 0 <= h1 < end:
        start = h1 + len("</h1>")
    return start, max(start, end)


def truncate_html(body: bytes) -> bytes:
    """The page cut two thirds into its content (no back link, no end tags).

    >>> truncate_html("<section><h1>T</h1><p>一二三四五六</p><p><a>返回</a></p></section>".encode())
    b'<section><h1>T</h1><p>\\xe4\\xb8\\x80\\xe4\\xba\\x8c\\xe4\\xb8\\x89\\xe5\\x9b\\x9b\\xe4\\xba\\x94'
    """
    text = body.decode("utf-8", errors="replace")
    start, end = content_bounds(text)
    cut = start + (end - start) * 2 // 3
    return text[:cut].encode("utf-8")


def site_links(html: str) -> list[str]:
    """``href`` values of a page that point to the main or alias host (or are relative).

    >>> site_links('<a href="https://finews.zning.me/x">a</a><a href="http://o.com/">b</a>'
    ...            '<a href="/c">c</a>')
    ['https://finews.zning.me/x', '/c']
    """
    out = []
    for href in _HREF_RE.findall(html):
        host = urlsplit(href if not href.startswith("//") else "https:" + href).hostname
        if host is None or host in (MAIN_HOST, ALIAS_HOST):
            out.append(href)
    return out


def reencode(body: bytes, charset: str) -> tuple[bytes, str]:
    """The UTF-8 page in ``charset`` (``gbk``, ``gb18030`` or ``gb2312``), its
    ``<meta charset>`` rewritten to say so; returns (bytes, declared charset).

    ``gb2312`` is declared the old way (``http-equiv``) and written as GBK, as
    many Chinese sites do; a page GBK cannot hold is declared GB18030.

    >>> data, label = reencode('<meta charset="UTF-8"><p>金融“消息”</p>'.encode(), "gbk")
    >>> label, data.decode("gbk")
    ('gbk', '<meta charset="gbk"><p>金融“消息”</p>')
    >>> reencode('<meta charset="UTF-8">𠮷'.encode(), "gbk")[1]
    'gb18030'
    """
    text = body.decode("utf-8")
    codec = "gb18030" if charset == "gb18030" else "gbk"
    label = charset
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        codec = label = "gb18030"
    if label == "gb2312":
        decl = '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">'
    else:
        decl = f'<meta charset="{label}">'
    return text.replace(_META_CHARSET, decl, 1).encode(codec), label


def enormous_page(body: bytes, size: int) -> bytes:
    """The page padded with an HTML comment to ``size`` bytes (at least the page).

    >>> len(enormous_page(b"<html><body>x</body></html>", 100))
    100
    """
    marker = body.rfind(b"</body>")
    marker = len(body) if marker < 0 else marker
    pad = max(0, size - len(body) - len(b"<!---->"))
    return body[:marker] + b"<!--" + b"x" * pad + b"-->" + body[marker:]


def gzip_bomb(size: int) -> bytes:
    """A gzip stream of ``size`` zero bytes (about a thousandth of that on the wire).

    >>> import gzip; len(gzip.decompress(gzip_bomb(3 << 20))) == 3 << 20
    True
    """
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    parts = []
    left = size
    while left > 0:
        parts.append(comp.compress(chunk[: min(left, len(chunk))]))
        left -= len(chunk)
    parts.append(comp.flush())
    return b"".join(parts)


def cut_json(body: bytes) -> bytes:
    """A JSON document cut in the middle (no longer JSON).

    >>> cut_json(b'{"text": "<p>abcdef</p>"}')
    b'{"text": "<p'
    """
    cut = len(body) // 2
    while cut > 1:
        try:
            json.loads(body[:cut])
        except ValueError:
            return body[:cut]
        cut -= 1
    return body[:1]


def trap_page(title: str, next_href: str) -> str:
    """A page of a trap: the site's header and one link onwards."""
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="UTF-8">\n'
        f'<title>{title} - 金融消息</title>\n</head>\n<body>\n<div class="wrapper">\n'
        f'<header><h1><a href="https://{MAIN_HOST}/">金融消息</a></h1></header>\n'
        f'<section>\n<h2>{title}</h2>\n<p><a href="{next_href}">下一页</a></p>\n</section>\n'
        "</div>\n</body>\n</html>\n"
    )


def calendar_previous(year: int, month: int, day: int) -> str:
    """The calendar trap's link from one day to the day before.

    >>> calendar_previous(2022, 3, 1)
    '/calendar/2022/02/28/archive.html'
    """
    prev = date(year, month, day) - timedelta(days=1)
    return f"/calendar/{prev:%Y/%m/%d}/archive.html"


# -- planning -------------------------------------------------------------------------

#: faults that lose their article (on the post of a one-post article): kind, params, expect, n
BLOCKING: tuple[tuple[str, dict[str, Any], str, int], ...] = (
    (STATUS, {"status": 503}, "http_503", 2),
    (STATUS, {"status": 502}, "http_502", 1),
    (STATUS, {"status": 500}, "http_500", 1),
    (RESET, {"where": "before"}, CONNECTION_LOST, 1),
    (RESET, {"where": "mid"}, CONNECTION_LOST, 1),
    (SLOW, {}, TIMEOUT, 1),
    (GONE, {}, "http_404", 3),
    (SOFT_404, {}, BAD_NOT_FOUND, 2),
    (EMPTY, {}, BAD_EMPTY, 2),
    (TRUNCATED, {}, BAD_TRUNCATED, 2),
    (ENORMOUS, {}, TOO_LARGE, 1),
    (GZIP_BOMB, {}, DECOMPRESSION_BOMB, 1),
    (REDIRECT_LOOP, {}, LOOP, 1),
)
#: encodings (the article is stored, its text must be right): charset, header, n
ENCODINGS: tuple[tuple[str, str | None, int], ...] = (
    ("gbk", None, 3),
    ("gb18030", None, 1),
    ("gb2312", None, 1),
    ("gbk", "utf-8", 3),
)
#: faults on the share JSON of an article the post alone describes fully
SHARE_BLOCKING: tuple[tuple[str, dict[str, Any], str, int], ...] = (
    (INVALID_JSON, {}, INVALID_SHARE_JSON, 2),
    (STATUS, {"status": 503}, "http_503", 1),
)
#: faults a crawler gets over by retrying, spread over pages and share JSON
TRANSIENT: tuple[tuple[str, dict[str, Any]], ...] = (
    (STATUS, {"status": 503, "times": 1}),
    (STATUS, {"status": 500, "times": 2}),
    (RESET, {"where": "before", "times": 1}),
    (STATUS, {"status": 502, "times": 1}),
    (RESET, {"where": "mid", "times": 1}),
    (STATUS, {"status": 503, "times": 2, "retry_after": 1}),
    (SLOW, {"times": 1}),
)
#: at most this many slow faults (each costs a crawler one download timeout)
MAX_SLOW = 4


def _main(path: str) -> str:
    return f"https://{MAIN_HOST}{path}"


def share_json_url(code: str) -> str:
    """The canonical share JSON URL of a code.

    >>> share_json_url("NW1")
    'https://finews.zning.xyz/NewsData/GetNewsText.do?id=NW1'
    """
    return f"https://{SHARE_HOST}{SHARE_JSON_PATH}?id={code}"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


class _Planner:
    """The state of one :func:`plan_faults` call."""

    def __init__(self, site_dir: Path, seed: int) -> None:
        self.site_dir = site_dir
        self.rng = random.Random(f"faults:{seed}")
        config = SiteConfig.load(site_dir / "site.json")
        self.site = Site(load_posts(site_dir / "posts"), config)
        self.records = _read_jsonl(site_dir / "expected.jsonl")
        manifest = json.loads((site_dir / "manifest.json").read_text(encoding="utf-8"))
        by_file = {p.file_name: p for p in self.site.posts}
        by_path = {self.site.path(p): p for p in self.site.posts}
        #: article key -> its posts (generated ones from the manifest, samples by URL)
        self.posts: dict[str, list[Post]] = {}
        self.generated: set[str] = set()
        for key, files in manifest.get("article_posts", {}).items():
            self.posts[key] = [by_file[f] for f in files if f in by_file]
            self.generated.add(key)
        for record in self.records:
            if record["key"] not in self.posts:
                path = urlsplit(record.get("url") or "").path
                self.posts[record["key"]] = [by_path[path]] if path in by_path else []
        self.free = walk(self.site)
        self.faults: list[Fault] = []
        self.used: set[str] = set()  # fault keys already given a fault
        self.used_articles: set[str] = set()
        self.blocked: set[PageKey] = set()

    def www(self, host: str, path: str) -> Path:
        path = unquote(path)
        rel = path.lstrip("/") + ("index.html" if path.endswith("/") else "")
        return self.site_dir / "www" / host / rel

    def add(self, fault: Fault) -> None:
        key = url_key(fault.url)
        assert key is not None and key not in self.used, fault.url
        self.used.add(key)
        self.faults.append(fault)
        if fault.article:
            self.used_articles.add(fault.article)

    def candidates(self, reached: Walk, *, single: bool = True) -> list[str]:
        """Generated articles whose every post is reached, not yet used, shuffled."""
        keys = [
            key
            for key in sorted(self.generated)
            if key not in self.used_articles
            and self.posts[key]
            and (len(self.posts[key]) == 1 or not single)
            and all(id(p) in reached.posts for p in self.posts[key])
        ]
        self.rng.shuffle(keys)
        return keys

    def page_url(self, page: PageKey) -> str | None:
        kind, value = page
        if kind == "home":
            return _main("/")
        if kind in ("category", "folder"):
            return _main(category_page_path(value))
        return _main(value) if kind == "post" else None

    def fetched(self, reached: Walk) -> set[str]:
        """Fault keys of every page and share JSON a crawler fetches from the site
        as ``reached`` (a category page and its folder form are one)."""
        keys = {url_key(url) for page in reached.pages if (url := self.page_url(page))}
        for post in self.site.posts:
            code = share_code(post.body) if id(post) in reached.posts else None
            if code:
                keys.add(url_key(share_json_url(code)))
        return {key for key in keys if key is not None}

    def post_url(self, key: str) -> str:
        return _main(self.site.path(self.posts[key][0]))

    def truncation_is_clean(self, key: str) -> bool:
        """The cut page keeps no link to another site page than the home page."""
        page = self.www(MAIN_HOST, self.site.path(self.posts[key][0])).read_bytes()
        kept = truncate_html(page).decode("utf-8", errors="replace")
        home = {f"https://{MAIN_HOST}/", f"https://{ALIAS_HOST}/", "/"}
        return all(href in home for href in site_links(kept))

    def plan_blocking(self, slow_seconds: float, enormous: int, bomb: int) -> None:
        pool = self.candidates(self.free)
        for kind, params, expect, count in BLOCKING:
            for _ in range(count):
                while pool:
                    key = pool.pop()
                    if kind != TRUNCATED or self.truncation_is_clean(key):
                        break
                else:
                    raise ValueError("site too small for its fault plan")
                fault = Fault(self.post_url(key), kind, expect=expect, article=key, **params)
                if kind == SLOW:
                    fault.delay = slow_seconds
                elif kind == ENORMOUS:
                    fault.size = enormous
                elif kind == GZIP_BOMB:
                    fault.size = bomb
                self.add(fault)
                self.blocked.add(("post", self.site.path(self.posts[key][0])))

    def plan_dead_category(self) -> None:
        """One category page answers 503 for good, unless that would leave an
        article with only some of its posts (its categories would then differ)."""
        categories = self.site.categories()
        slugs = [
            slug
            for slug in sorted(categories)
            if len(categories[slug]) > self.site.config.home_per_tag
            and ("category", slug) in self.free.pages
        ]
        self.rng.shuffle(slugs)
        for slug in slugs:
            trial = self.blocked | {("category", slug), ("folder", slug)}
            reached = walk(self.site, trial)
            partial = [
                key
                for key, posts in self.posts.items()
                if len({id(p) in reached.posts for p in posts}) > 1
            ]
            if partial or not trial <= reached.pages | {("folder", slug)}:
                continue  # split articles, or faulty pages a crawler would never fetch
            self.blocked = trial
            self.add(Fault(_main(category_page_path(slug)), STATUS, status=503, expect="http_503"))
            return
        logger.warning("no category page can fail for good without splitting an article")

    def plan_encodings(self, reached: Walk) -> None:
        pool = self.candidates(reached)
        for charset, header, count in ENCODINGS:
            for _ in range(count):
                key = pool.pop()
                self.add(
                    Fault(self.post_url(key), CHARSET, charset=charset, header=header, article=key)
                )

    def share_insensitive(self, reached: Walk) -> list[tuple[str, str]]:
        """(article key, share code) of media news whose post says everything its
        share JSON says (title and date on the page), so losing the JSON changes
        nothing stored."""
        records = {r["key"]: r for r in self.records}
        out = []
        for key in self.candidates(reached):
            record = records.get(key, {})
            code = share_code(self.posts[key][0].body)
            if (
                code
                and str(record.get("info_code") or "").startswith("NW")
                and not record.get("derived_fields")
                and record.get("share_url")
            ):
                out.append((key, code))
        return out

    def plan_share_blocking(self, reached: Walk) -> None:
        pool = self.share_insensitive(reached)
        for kind, params, expect, count in SHARE_BLOCKING:
            for _ in range(count):
                key, code = pool.pop()
                self.add(Fault(share_json_url(code), kind, expect=expect, article=key, **params))

    def plan_transient(self, reached: Walk, target: int, slow_seconds: float) -> None:
        """Transient faults on the home page, then on pages and share JSON, until
        ``target`` URLs are faulty."""
        self.add(Fault(_main("/"), STATUS, status=503, times=1, retry_after=1))
        pages: list[tuple[str, str | None]] = []
        for kind, value in sorted(reached.pages):
            if kind == "category":
                pages.append((_main(category_page_path(value)), None))
            elif kind == "folder" and ("category", value) not in reached.pages:
                pages.append((_main(folder_page_path(value)), None))
        for key in sorted(self.generated):
            posts = self.posts[key]
            if key in self.used_articles or not all(id(p) in reached.posts for p in posts):
                continue
            pages += [(_main(self.site.path(p)), key) for p in posts]
            code = share_code(posts[0].body)
            if code:
                pages.append((share_json_url(code), key))
        self.rng.shuffle(pages)
        slow = sum(1 for f in self.faults if f.kind == SLOW)
        recipe = 0
        for url, article in pages:
            if len(self.faults) >= target:
                break
            page = url_key(url)
            if page is None or page in self.used:
                continue
            kind, params = TRANSIENT[recipe % len(TRANSIENT)]
            recipe += 1
            if kind == SLOW:
                if slow >= MAX_SLOW:
                    kind, params = TRANSIENT[0]
                else:
                    slow += 1
            fault = Fault(url, kind, article=article, **params)
            if kind == SLOW:
                fault.delay = slow_seconds
            self.add(fault)

    def traps(self) -> tuple[dict[str, list[str]], list[dict[str, str]], int]:
        """Links to add (trap entries, query variants) and the failures traps give."""
        today = self.site.config.now.astimezone(SHANGHAI).date()
        day = f"{today:%Y/%m/%d}"
        hop = f"/go/{day}/hop.html?n=1"
        jump = f"/out/{day}/jump.html"
        private = f"/private/{day}/NW{today:%Y%m%d}0000000001.html"
        home_links = ["/page2/", f"/calendar/{day}/archive.html", hop, jump, private, "/?from=nav"]
        tags = list(self.site.tags().values())
        listed = [p for posts in tags[:4] for p in posts[:1]]
        for i, post in enumerate(listed):
            path = self.site.path(post)
            home_links += [f"{path}?utm_source=feed&i={i}", f"{path}?page=2&sort=desc"]
        links = {_main("/"): home_links}
        for slug in sorted(self.site.categories())[:3]:
            page = _main(category_page_path(slug))
            links[page] = [category_page_path(slug) + "?page=2", folder_page_path(slug) + "?ts=1"]
        expect = [
            {"pattern": r"/page\d+/$|/category/page\d+\.html$", "reason": TRAP},
            {"pattern": r"/calendar/\d{4}/\d{2}/\d{2}/archive\.html$", "reason": TRAP},
            {"url": _main(hop), "reason": REDIRECT_LIMIT},
            {"url": _main(jump), "reason": OFFSITE},
            {"url": _main(private), "reason": ROBOTS},
        ]
        return links, expect, 5


def plan_faults(
    site_dir: Path,
    *,
    seed: int = 1,
    rate: float = 0.12,
    slow_seconds: float = 3.0,
    enormous_bytes: int = 24 << 20,
    bomb_bytes: int = 256 << 20,
) -> FaultPlan:
    """Plan faults for the built site in ``site_dir``, write ``faults.json`` and
    rewrite ``expected.jsonl`` (``storable``, ``faults``).

    At least ``rate`` of the URLs a crawler fetches from the fault-free site
    get a fault (every kind at least once, then transient ones). Choose
    ``slow_seconds`` above the crawler's download timeout, ``enormous_bytes``
    and ``bomb_bytes`` above its ``DOWNLOAD_MAXSIZE`` (the defaults are above
    newscrawl's). Deterministic for a given site and ``seed``.
    """
    site_dir = Path(site_dir)
    planner = _Planner(site_dir, seed)
    planner.plan_blocking(slow_seconds, enormous_bytes, bomb_bytes)
    planner.plan_dead_category()
    reached = walk(planner.site, planner.blocked)
    planner.plan_encodings(reached)
    planner.plan_share_blocking(reached)
    urls = len(planner.fetched(planner.free))
    links, trap_expect, trap_urls = planner.traps()
    target = math.ceil(rate * urls) - trap_urls
    planner.plan_transient(reached, target, slow_seconds)

    fetched = planner.fetched(reached)
    unfetched = [f.url for f in planner.faults if url_key(f.url) not in fetched]
    if unfetched:
        raise ValueError(f"faults on pages a crawler never fetches: {unfetched[:5]}")
    expect = [{"url": f.url, "reason": f.expect} for f in planner.faults if f.expect]
    plan = FaultPlan(
        seed=seed,
        rate=rate,
        slow_seconds=slow_seconds,
        faults=planner.faults,
        links=links,
        expect_failed=expect + trap_expect,
    )
    touching: dict[str, list[str]] = {}
    for fault in planner.faults:
        if fault.article:
            touching.setdefault(fault.article, []).append(fault.kind)
    records = []
    for record in planner.records:
        posts = planner.posts.get(record["key"], [])
        record["storable"] = bool(posts) and all(id(p) in reached.posts for p in posts)
        record["faults"] = touching.get(record["key"], [])
        records.append(record)
    (site_dir / "expected.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    kinds = Counter(f.kind for f in planner.faults)
    plan.counts = {
        "site_urls": urls,
        "faulty_urls": len(planner.faults) + trap_urls,
        "faults": dict(sorted(kinds.items())),
        "fail_for_good": len(expect),
        "articles": len(records),
        "storable": sum(1 for r in records if r["storable"]),
        "reachable": sum(1 for r in records if r.get("reachable")),
    }
    plan.save(site_dir)
    logger.info("fault plan for %s: %s", site_dir, plan.counts)
    return plan
