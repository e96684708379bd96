"""What is specific to the finews site: hosts, URL forms, identity.

See the README's "The finews site" section (and SITE.md in the shared notes).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from newscrawl.urls import normalize_url

SITE = "finews"
#: URLs whose canonical form and kind are remembered: the same links (home,
#: categories, neighbours) come back on every page, and every request is
#: fingerprinted, routed and checked through them (pure functions of the URL)
URL_CACHE_SIZE = 65_536
#: the site itself
MAIN_HOST = "finews.withounder.com"
#: the same site under another name (every page's first og:url points here)
ALIAS_HOSTS = ("finews.zning.me",)
#: share / origin hosts: /html_News/NewsShare.html?infoCode=<code>
SHARE_HOSTS = ("finews.zning.xyz", "choicewzp1.eastmoney.com")
#: the share host we fetch the JSON from (the older host serves the same path)
SITE_HOSTS = (MAIN_HOST, *ALIAS_HOSTS)
ALLOWED_HOSTS = (*SITE_HOSTS, *SHARE_HOSTS)

HOME_URL = f"https://{MAIN_HOST}/"
FEED_PATH = "/feed.xml"
SHARE_PATH = "/html_News/NewsShare.html"
SHARE_JSON_PATH = "/NewsData/GetNewsText.do"
SITE_TIMEZONE = "Asia/Shanghai"

#: /<category segments>/<yyyy>/<mm>/<dd>/<id>.html
POST_PATH_RE = re.compile(
    r"^/(?P<cats>(?:[^/]+/)+?)(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<id>[^/]+)\.html$"
)
#: /category/<slug>.html
CATEGORY_PAGE_RE = re.compile(r"^/category/(?P<slug>[^/]+)\.html$")
#: article ids: NW + 18 digits (media news) or 18 digits (rolling news)
INFO_CODE_RE = re.compile(r"^(?:NW)?\d{18}$")
#: /<slug>/, the older folder form of a category page
FOLDER_CATEGORY_RE = re.compile(r"^/(?P<slug>[^/]+)/$")
#: /category/<slug> without .html (GitHub Pages serves <slug>.html for it)
_BARE_CATEGORY_RE = re.compile(r"^/category/[^/]+(?<!\.html)$")
_REPEATED_SLASHES = re.compile(r"/{2,}")

# --- identity -------------------------------------------------------------

HOME = "home"
POST = "post"
CATEGORY = "category"
FEED = "feed"
SHARE_PAGE = "share_page"
SHARE_JSON = "share_json"
OFFSITE = "offsite"
OTHER = "other"


#: canonical forms already made (:func:`canonical_url`), also those a parse
#: process made (:func:`remember_canonical`); emptied when full
_CANONICAL: dict[str, str] = {}


def remember_canonical(forms: Mapping[str, str]) -> None:
    """Keep canonical forms :func:`canonical_url` made in another process
    (the parse process makes them for the links it reads, off the crawler's
    thread), so that routing, fingerprinting and checking those links here
    costs a lookup.

    >>> remember_canonical({"http://finews.zning.me/a/": "https://finews.withounder.com/a/"})
    >>> canonical_url("http://finews.zning.me/a/")
    'https://finews.withounder.com/a/'
    """
    if len(_CANONICAL) + len(forms) > URL_CACHE_SIZE:
        _CANONICAL.clear()
    _CANONICAL.update(forms)


def canonical_url(url: str) -> str:
    """The one canonical form of a finews URL (other hosts: generic rules);
    remembered (:data:`URL_CACHE_SIZE` of them).

    The alias host is the site host; http and https are one page; the static
    site ignores query strings; ``index.html`` is its folder; the folder form
    of a category page is the ``/category/<slug>.html`` form; a share page or
    its JSON on either share host is one address with only its code. The
    request fingerprinter and the items both use it. One example per rule:

    alias host, http, default port, query and fragment:

    >>> canonical_url("http://finews.zning.me:80/dazhongribao/2022/02/18/NW1.html?from=home#x")
    'https://finews.withounder.com/dazhongribao/2022/02/18/NW1.html'
    >>> canonical_url("HTTPS://FINEWS.WITHOUNDER.COM:443/emnews/2022/02/18/1.html")
    'https://finews.withounder.com/emnews/2022/02/18/1.html'

    tracking parameters (``utm_*``) and the host's trailing dot:

    >>> canonical_url("https://finews.withounder.com./category/x.html?utm_source=wx&utm_medium=a")
    'https://finews.withounder.com/category/x.html'

    the two category forms (folder, relative, and without ``.html``, which
    GitHub Pages serves as the ``.html`` page):

    >>> canonical_url("//finews.withounder.com/emnews/")
    'https://finews.withounder.com/category/emnews.html'
    >>> canonical_url("https://finews.withounder.com/a/../emnews/index.html")
    'https://finews.withounder.com/category/emnews.html'
    >>> canonical_url("https://finews.withounder.com/category/emnews")
    'https://finews.withounder.com/category/emnews.html'

    ``index.html``, repeated slashes:

    >>> canonical_url("https://finews.withounder.com/index.html")
    'https://finews.withounder.com/'
    >>> canonical_url("https://finews.withounder.com//emnews//2022/02/18/1.html")
    'https://finews.withounder.com/emnews/2022/02/18/1.html'

    percent-encoding: spaces encoded, unreserved characters decoded, hex
    digits upper case:

    >>> canonical_url("https://finews.withounder.com/category/21shiji 21caijingAPP.html")
    'https://finews.withounder.com/category/21shiji%2021caijingAPP.html'
    >>> canonical_url("https://finews.withounder.com/category/a%2db.html")
    'https://finews.withounder.com/category/a-b.html'
    >>> canonical_url("https://finews.withounder.com/%e6%96%b0/2022/02/18/1.html")
    'https://finews.withounder.com/%E6%96%B0/2022/02/18/1.html'

    share pages and the JSON endpoint, on both share hosts, over http and
    https, with only their code (whatever the case of its name):

    >>> canonical_url("http://choicewzp1.eastmoney.com/html_News/NewsShare.html?infoCode=NW1&x=2")
    'https://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW1'
    >>> canonical_url("https://finews.zning.xyz/html_News/NewsShare.html?infocode=NW1#top")
    'https://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW1'
    >>> canonical_url("http://finews.zning.xyz/NewsData/GetNewsText.do?id=NW1&_=123")
    'https://finews.zning.xyz/NewsData/GetNewsText.do?id=NW1'

    (:func:`article_key_for_url` maps a post, share page or JSON URL to its
    article.) Other hosts get the generic rules only:

    >>> canonical_url("http://finance.eastmoney.com/news/1344,1.html?utm_medium=x")
    'http://finance.eastmoney.com/news/1344,1.html'
    """
    known = _CANONICAL.get(url)
    if known is None:
        known = _canonical_url(url)
        remember_canonical({url: known})
    return known


def _canonical_url(url: str) -> str:
    if url.startswith("//"):
        url = "https:" + url
    norm = normalize_url(url)
    parts = urlsplit(norm)
    host = parts.hostname or ""
    if host in SITE_HOSTS:
        path = _REPEATED_SLASHES.sub("/", parts.path)
        if path.endswith("/index.html"):
            path = path[: -len("index.html")]
        folder = FOLDER_CATEGORY_RE.match(path)
        if folder:
            path = f"/category/{folder['slug']}.html"
        elif _BARE_CATEGORY_RE.match(path):
            path += ".html"
        return urlunsplit(("https", MAIN_HOST, path, "", ""))
    if host in SHARE_HOSTS:
        param = {SHARE_PATH: "infoCode", SHARE_JSON_PATH: "id"}.get(parts.path)
        if param:
            values = {name.lower(): value for name, value in parse_qsl(parts.query)}
            code = values.get(param.lower(), "")
            return _share_address(parts.path, urlencode({param: code}) if code else "")
        return _share_address(parts.path, parts.query)
    return norm


def _share_address(path: str, query: str) -> str:
    """A share page or JSON address in its canonical form (https, the first share host)."""
    return urlunsplit(("https", SHARE_HOSTS[0], path, query, ""))


@lru_cache(maxsize=URL_CACHE_SIZE)
def route(url: str) -> str:
    """What kind of page a URL is (after canonicalisation).

    >>> route("https://finews.zning.me/")
    'home'
    >>> route("http://finews.withounder.com/dazhongribao/2022/02/18/NW202202182281010830.html")
    'post'
    >>> route("https://finews.withounder.com/a/b/2022/02/18/1.html")
    'post'
    >>> route("//finews.withounder.com/emnews/"), route("https://finews.withounder.com/category/x.html")
    ('category', 'category')
    >>> route("https://finews.withounder.com/feed.xml")
    'feed'
    >>> route("http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW1")
    'share_page'
    >>> route("http://finews.zning.xyz/NewsData/GetNewsText.do?id=NW1")
    'share_json'
    >>> route("http://finance.eastmoney.com/news/1344,1.html"), route("https://finews.withounder.com/about.png")
    ('offsite', 'other')
    >>> route("mailto:x@example.com"), route("http://[::1")  # the last: not a URL at all
    ('other', 'other')
    """
    try:
        parts = urlsplit(canonical_url(url))
    except ValueError:
        return OTHER
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https"):
        return OTHER
    if host == MAIN_HOST:
        if parts.path == "/":
            return HOME
        if parts.path == FEED_PATH:
            return FEED
        if CATEGORY_PAGE_RE.match(parts.path):
            return CATEGORY
        if POST_PATH_RE.match(parts.path):
            return POST
        return OTHER
    if host in SHARE_HOSTS:
        if parts.path == SHARE_PATH and parts.query:
            return SHARE_PAGE
        if parts.path == SHARE_JSON_PATH and parts.query:
            return SHARE_JSON
        return OTHER
    return OFFSITE


def info_code_of(url: str) -> str | None:
    """The article id a post, share page or share JSON URL names, if any.

    >>> info_code_of("https://finews.withounder.com/emnews/2021/12/08/202112082206672930.html")
    '202112082206672930'
    >>> info_code_of("http://choicewzp1.eastmoney.com/html_News/NewsShare.html?infoCode=NW202202182281010830")
    'NW202202182281010830'
    >>> info_code_of("https://finews.withounder.com/sitenews/2021/12/01/init.html") is None
    True
    """
    canon = canonical_url(url)
    parts = urlsplit(canon)
    kind = route(canon)
    code: str | None = None
    if kind == POST:
        match = POST_PATH_RE.match(parts.path)
        code = match["id"] if match else None
    elif kind in (SHARE_PAGE, SHARE_JSON):
        code = next(iter(dict(parse_qsl(parts.query)).values()), None)
    return code if code and INFO_CODE_RE.match(code) else None


def share_json_url(share_url: str) -> str | None:
    """The JSON endpoint behind a share page link, on the host the link names.

    >>> share_json_url("http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202202182281010830")
    'http://finews.zning.xyz/NewsData/GetNewsText.do?id=NW202202182281010830'
    >>> share_json_url("https://finews.withounder.com/") is None
    True

    Its canonical form is known here, so it is remembered (routing and
    fingerprinting the JSON request then cost a lookup); it is the form
    :func:`canonical_url` makes:

    >>> code = "NW202202182281010830"
    >>> url = share_json_url(f"http://Choicewzp1.eastmoney.com:80/html_News/NewsShare.html?infocode={code}&x=2")
    >>> canonical_url(url) == _canonical_url(url) == (
    ...     f"https://finews.zning.xyz/NewsData/GetNewsText.do?id={code}")
    True
    """
    code = info_code_of(share_url)
    if code is None or route(share_url) != SHARE_PAGE:
        return None
    parts = urlsplit(share_url if not share_url.startswith("//") else "https:" + share_url)
    query = urlencode({"id": code})
    url = urlunsplit((parts.scheme, parts.netloc, SHARE_JSON_PATH, query, ""))
    remember_canonical({url: _share_address(SHARE_JSON_PATH, query)})
    return url


def article_key(info_code: str | None, url: str) -> str:
    """The stable ``_id``: the article id when there is one, else the canonical URL's hash.

    >>> article_key("NW202202182281010830", "https://x/")
    'finews:NW202202182281010830'
    >>> article_key(None, "https://finews.withounder.com/sitenews/2021/12/01/init.html")
    'finews:url:999e6b805d6a839ce252c219e8ed1f16d1762f04'
    """
    if info_code:
        return f"{SITE}:{info_code}"
    digest = hashlib.sha1(canonical_url(url).encode()).hexdigest()
    return f"{SITE}:url:{digest}"


def article_key_for_url(url: str) -> str | None:
    """The ``_id`` of the article a URL belongs to: a post on either host,
    its share page on either share host, or its share JSON; None for any
    other page (home, category, feed, off-site).

    >>> post = "http://finews.zning.me/dazhongribao/2022/02/18/NW202202182281010830.html?from=x"
    >>> share = "http://choicewzp1.eastmoney.com/html_News/NewsShare.html?infoCode=NW202202182281010830"
    >>> data = "https://finews.zning.xyz/NewsData/GetNewsText.do?id=NW202202182281010830"
    >>> {article_key_for_url(u) for u in (post, share, data)}
    {'finews:NW202202182281010830'}
    >>> article_key_for_url("https://finews.withounder.com/sitenews/2021/12/01/init.html")
    'finews:url:999e6b805d6a839ce252c219e8ed1f16d1762f04'
    >>> article_key_for_url("https://finews.withounder.com/category/emnews.html") is None
    True
    """
    kind = route(url)
    code = info_code_of(url)
    if code is not None:
        return article_key(code, url)
    if kind == POST:
        return article_key(None, url)
    return None
