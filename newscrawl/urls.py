"""Generic URL normalisation, shared by every site.

Site-specific rules (alias hosts, page forms) live in ``newscrawl/sites/``;
:func:`newscrawl.sites.canonical_url` combines both and is the one function the
request fingerprinter and the items use.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urljoin, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

#: query parameters that never change what a page is
TRACKING_PARAMS = frozenset(
    {"from", "spm", "share_from", "share_token", "fbclid", "gclid", "isappinstalled", "scene"}
)
DEFAULT_PORTS = {"http": 80, "https": 443}
#: characters left unescaped in query keys and values
QUERY_SAFE = "/:,"


def is_tracking_param(name: str) -> bool:
    """
    >>> is_tracking_param("utm_source"), is_tracking_param("from"), is_tracking_param("id")
    (True, True, False)
    """
    name = name.lower()
    return name.startswith("utm_") or name in TRACKING_PARAMS


def normalize_url(url: str) -> str:
    """Normalise a URL without knowing its site: lower-case scheme and host,
    no default port, no fragment, no tracking parameters, sorted query,
    upper-case percent-encoding, dot segments resolved.

    >>> normalize_url("HTTP://Example.COM:80/a/../b%2f?utm_source=x&b=2&a=1#top")
    'http://example.com/b%2F?a=1&b=2'
    >>> normalize_url("https://example.com:443/新闻 1.html")
    'https://example.com/%E6%96%B0%E9%97%BB%201.html'
    >>> normalize_url("https://example.com:8443/")
    'https://example.com:8443/'
    >>> normalize_url("https://Example.com.:443/a")  # the root's trailing dot
    'https://example.com/a'
    """
    url = canonicalize_url(url.strip(), keep_blank_values=True)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port
    netloc = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(
        f"{quote(k, safe=QUERY_SAFE)}={quote(v, safe=QUERY_SAFE)}"
        for k, v in pairs
        if not is_tracking_param(k)
    )
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def absolute_url(base: str, href: str) -> str:
    """``href`` resolved against ``base``; ``href`` as it is when either cannot
    be parsed (pages hold anything: ``http://[::1`` makes ``urljoin`` raise).

    >>> absolute_url("https://finews.withounder.com/a/1.html", "../b/2.html")
    'https://finews.withounder.com/b/2.html'
    >>> absolute_url("http://[::1", "/x.html")
    '/x.html'
    """
    try:
        return urljoin(base, href)
    except ValueError:
        return href


def host_of(url: str) -> str:
    """
    >>> host_of("https://Finews.Zning.ME:443/x")
    'finews.zning.me'
    """
    return (urlsplit(url).hostname or "").lower()
