"""A download handler for the bench: https requests go to the proxy as plain http.

nginx cannot tunnel ``CONNECT``, so the bench crawls http: the start URL and
the share links are http already, but a few listing links and the header's
home link are ``https://``. Through a proxy, this handler fetches such a URL
as its ``http://`` twin (an absolute-form request nginx routes by host) and
hands the crawler a response carrying the original https URL, so the crawl
sees the true URLs. Without a proxy, https is fetched as usual. The bare
spider and the product both use it (``DOWNLOAD_HANDLERS``, see
:data:`SETTINGS`), so the comparison stays fair.
"""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached

#: the settings that install the handler
SETTINGS: dict[str, Any] = {
    "DOWNLOAD_HANDLERS": {"https": "bench.handlers.HttpsAsHttpHandler"},
}


def http_twin(url: str) -> str:
    """The ``http://`` form of an ``https://`` URL.

    >>> http_twin("https://finews.zning.me/a/2022/01/01/1.html?x=1")
    'http://finews.zning.me/a/2022/01/01/1.html?x=1'
    """
    return "http://" + url.split("://", 1)[1]


class HttpsAsHttpHandler(HTTP11DownloadHandler):
    """Proxied https requests are fetched as http (see the module doc)."""

    async def download_request(self, request: Request) -> Response:
        if request.meta.get("proxy") and urlparse_cached(request).scheme == "https":
            twin = request.replace(url=http_twin(request.url))
            response = await super().download_request(twin)
            # what the download recorded on the twin (download_latency: without
            # it AutoThrottle never adapts the slot's delay) belongs to the request
            for key, value in twin.meta.items():
                request.meta.setdefault(key, value)
            return response.replace(url=request.url)
        return await super().download_request(request)
