"""Site modules: what is specific to one site. ``canonical_url`` dispatches by host.

A site module defines ``SITE``, ``ALLOWED_HOSTS`` and ``canonical_url(url)``.
"""

from __future__ import annotations

from types import ModuleType

from newscrawl.sites import finews
from newscrawl.urls import host_of, normalize_url

SITES: dict[str, ModuleType] = {finews.SITE: finews}
_BY_HOST: dict[str, ModuleType] = {
    host: module for module in SITES.values() for host in module.ALLOWED_HOSTS
}


def canonical_url(url: str) -> str:
    """The canonical form of any URL: its site's rules, else the generic ones.

    >>> canonical_url("http://finews.zning.me/x/2022/01/02/NW1.html?utm_source=a")
    'https://finews.withounder.com/x/2022/01/02/NW1.html'
    >>> canonical_url("HTTP://Example.com/a?utm_source=x&b=1#f")
    'http://example.com/a?b=1'
    """
    site = _BY_HOST.get(host_of(url if not url.startswith("//") else "https:" + url))
    if site is not None:
        result: str = site.canonical_url(url)
        return result
    return normalize_url(url)
