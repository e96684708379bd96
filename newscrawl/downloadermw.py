"""Downloader middlewares for bad networks and site boundaries.

- :class:`BackoffRetryMiddleware` replaces Scrapy's RetryMiddleware: the same
  retries (5xx, timeouts, resets), but each retry waits an exponential backoff
  with jitter (or the server's ``Retry-After``) *outside* the downloader, so a
  bad host holds no download slot while it waits and the other hosts go on.
- :class:`RedirectGuardMiddleware` ends redirect loops and overlong redirect
  chains, refuses redirects to other hosts, and lets a redirect to another form
  of the same page (http to https, a query added) through the dupefilter.
- :class:`SiteBoundaryMiddleware` refuses requests to hosts outside the
  spider's ``allowed_domains`` (whatever made them: a redirect, ``dont_filter``)
  and connections to private, loopback or link-local addresses unless they are
  allowlisted.
- :class:`ContactUserAgentMiddleware` sends ``USER_AGENT`` with
  ``NEWSCRAWL_CONTACT`` filled in.

A refused request fails with :class:`newscrawl.runs.RefusedRequest`, so its
errback reports it to the run record with the reason.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import random
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from scrapy import signals
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.downloadermiddlewares.useragent import UserAgentMiddleware
from scrapy.exceptions import DontCloseSpider, IgnoreRequest, NotConfigured
from scrapy.utils.asyncio import CallLaterResult, call_later
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.response import response_status_message
from twisted.internet.error import DNSLookupError
from w3lib.url import safe_url_string

from newscrawl import runs
from newscrawl.sites import canonical_url

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

#: request meta: the time (``time.time()``) before which a retry must not be sent
NOT_BEFORE = "newscrawl_not_before"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# -- pure helpers ----------------------------------------------------------------------


def backoff_delay(attempt: int, base: float, cap: float, jitter: float, rand: float) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry):
    ``base * 2**(attempt-1)``, spread by ``±jitter`` (a fraction) using ``rand``
    in [0, 1), and never above ``cap``.

    >>> [backoff_delay(n, 1.0, 60.0, 0.5, 0.5) for n in (1, 2, 3, 8)]
    [1.0, 2.0, 4.0, 60.0]
    >>> backoff_delay(1, 1.0, 60.0, 0.5, 0.0), backoff_delay(2, 1.0, 60.0, 0.5, 0.999)
    (0.5, 2.998)
    >>> backoff_delay(3, 0.0, 60.0, 0.5, 0.3)
    0.0
    """
    delay = base * 2 ** max(0, attempt - 1)
    delay *= 1 - jitter + 2 * jitter * rand
    return float(round(min(cap, max(0.0, delay)), 6))


def retry_after_seconds(value: str | bytes | None, now: float) -> float | None:
    """The wait a ``Retry-After`` header asks for (seconds or an HTTP date), if any.

    >>> retry_after_seconds(b"3", 0.0), retry_after_seconds("soon", 0.0)
    (3.0, None)
    >>> retry_after_seconds("Thu, 01 Jan 1970 00:01:00 GMT", 30.0)
    30.0
    """
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def host_allowed(host: str | None, allowed: Sequence[str]) -> bool:
    """Whether ``host`` is one of ``allowed`` or a subdomain of one (Scrapy's
    ``allowed_domains`` rule); no list allows every host.

    >>> host_allowed("finews.zning.me", ["finews.zning.me"]), host_allowed("a.b.c", ["b.c"])
    (True, True)
    >>> host_allowed("evilb.c", ["b.c"]), host_allowed(None, ["b.c"]), host_allowed("x", [])
    (False, False, True)
    """
    if not allowed:
        return True
    if not host:
        return False
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in (a.lower() for a in allowed))


def parse_networks(values: Sequence[str]) -> list[IPNetwork]:
    """Addresses and networks of ``NEWSCRAWL_ALLOWED_ADDRESSES``.

    >>> [str(n) for n in parse_networks(["127.0.0.1", "10.1.0.0/16", " ::1 "])]
    ['127.0.0.1/32', '10.1.0.0/16', '::1/128']
    """
    return [ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip()]


def address_refusal(address: str, allowed: Sequence[IPNetwork]) -> str | None:
    """Why a connection to ``address`` is refused (None: it is not): private,
    loopback, link-local or unspecified addresses, unless in ``allowed``.

    >>> address_refusal("93.184.216.34", []) is None
    True
    >>> [address_refusal(a, []) for a in ("127.0.0.1", "10.0.0.5", "169.254.169.254", "::1")]
    ['loopback', 'private', 'link-local', 'loopback']
    >>> address_refusal("::ffff:192.168.1.1", []), address_refusal("0.0.0.0", [])
    ('private', 'unspecified')
    >>> address_refusal("127.0.0.1", parse_networks(["127.0.0.1"])) is None
    True
    """
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    if any(ip in net for net in allowed):
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
        if any(ip in net for net in allowed):
            return None
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private:
        return "private"
    return None


def is_ip(host: str) -> bool:
    """
    >>> is_ip("127.0.0.1"), is_ip("::1"), is_ip("localhost")
    (True, True, False)
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def user_agent_for(template: str, contact: str | None) -> str:
    """``USER_AGENT`` with ``{contact}`` replaced by the contact setting.

    >>> user_agent_for("newscrawl/0.1 (+{contact})", "mailto:ops@example.org")
    'newscrawl/0.1 (+mailto:ops@example.org)'
    >>> user_agent_for("newscrawl/0.1 (+{contact})", "")
    'newscrawl/0.1'
    >>> user_agent_for("MyBot/2", "x")
    'MyBot/2'
    """
    if "{contact}" not in template:
        return template
    if not contact:
        return template.split("(", 1)[0].strip() if "(" in template else template
    return template.replace("{contact}", contact)


# -- retries ---------------------------------------------------------------------------


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retries, each delayed by an exponential backoff with jitter.

    A retry is handed back to the engine at once, marked with the time it may
    be sent; when the scheduler receives it early (``request_scheduled``), it is
    parked on a timer and scheduled again when due, so no download slot and no
    concurrency is held while it waits. The crawl is kept open while retries are
    parked; retries still parked when the crawl ends are reported as
    ``retry_pending``. A ``Retry-After`` header longer than the backoff wins (up
    to the cap).

    Settings: Scrapy's ``RETRY_ENABLED``, ``RETRY_TIMES``, ``RETRY_HTTP_CODES``,
    ``RETRY_EXCEPTIONS``, ``RETRY_PRIORITY_ADJUST``, ``RETRY_GIVE_UP_LOG_LEVEL``;
    ``RETRY_BACKOFF_BASE`` (1.0 s: the first retry's wait), ``RETRY_BACKOFF_MAX``
    (60 s), ``RETRY_BACKOFF_JITTER`` (0.5: ±50 %).
    Stats: ``newscrawl/retry/parked``, ``newscrawl/retry/backoff_ms`` (total wait).
    """

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.base = settings.getfloat("RETRY_BACKOFF_BASE", 1.0)
        self.cap = settings.getfloat("RETRY_BACKOFF_MAX", 60.0)
        self.jitter = min(1.0, max(0.0, settings.getfloat("RETRY_BACKOFF_JITTER", 0.5)))
        self.rng = random.Random()
        self.parked: dict[int, tuple[Request, CallLaterResult]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BackoffRetryMiddleware:
        mw = cls(crawler.settings)
        mw.crawler = crawler
        crawler.signals.connect(mw.request_scheduled, signal=signals.request_scheduled)
        crawler.signals.connect(mw.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            return response
        wait = retry_after_seconds(response.headers.get("Retry-After"), time.time())
        if wait is not None:
            due = time.time() + min(wait, self.cap)
            retry.meta[NOT_BEFORE] = max(retry.meta.get(NOT_BEFORE, 0.0), due)
        return retry

    def _retry(self, request: Request, reason: str | Exception | type[Exception]) -> Request | None:
        retry = super()._retry(request, reason)
        if retry is None:
            return None
        delay = backoff_delay(
            int(retry.meta.get("retry_times", 1)),
            self.base,
            self.cap,
            self.jitter,
            self.rng.random(),
        )
        if delay > 0:
            retry.meta[NOT_BEFORE] = time.time() + delay
        return retry

    # -- parking ---------------------------------------------------------------------

    def request_scheduled(self, request: Request, spider: Spider) -> None:
        """Park a retry that is not due yet (the engine then drops it for now)."""
        due = request.meta.get(NOT_BEFORE)
        if due is None:
            return
        wait = float(due) - time.time()
        if wait <= 0:
            return
        timer = call_later(wait, self._release, request)
        self.parked[id(request)] = (request, timer)
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("newscrawl/retry/parked")
        self.crawler.stats.inc_value("newscrawl/retry/backoff_ms", int(wait * 1000))
        logger.debug("Retry of %s waits %.2fs", request, wait)
        raise IgnoreRequest("retry parked until its backoff ends")

    def _release(self, request: Request) -> None:
        if self.parked.pop(id(request), None) is None:
            return
        request.meta.pop(NOT_BEFORE, None)
        engine = self.crawler.engine
        if engine is None or self.crawler.spider is None or not engine.running:
            runs.report_failure(self.crawler, runs.first_url(request), runs.RETRY_PENDING)
            return
        engine.crawl(request)

    def spider_idle(self) -> None:
        if self.parked:
            raise DontCloseSpider

    def spider_closed(self) -> None:
        """Retries still waiting are reported, so a later run can do them."""
        for request, timer in list(self.parked.values()):
            timer.cancel()
            attempts = int(request.meta.get("retry_times", 1))
            runs.report_failure(
                self.crawler,
                runs.first_url(request),
                runs.RETRY_PENDING,
                "the crawl ended while the retry waited",
                attempts,
            )
        self.parked.clear()


# -- redirects -------------------------------------------------------------------------


def _same(url: str) -> str:
    """A URL without its fragment, for loop detection (exact otherwise)."""
    return safe_url_string(url.split("#", 1)[0])


class RedirectGuardMiddleware:
    """Looks at redirects before Scrapy's RedirectMiddleware follows them.

    Refuses (``RefusedRequest``): a redirect to a host outside the spider's
    ``allowed_domains`` (``offsite``), to a URL already in the chain
    (``redirect_loop``), or beyond ``REDIRECT_MAX_TIMES`` (``redirect_limit``).
    A redirect to the same page in another form (same canonical URL: http to
    https, the alias host, a query) is let through the dupefilter, which would
    otherwise drop it as a duplicate of the page being fetched.

    Settings: ``REDIRECT_ENABLED``, ``REDIRECT_MAX_TIMES`` (Scrapy's).
    Place it after RedirectMiddleware (priority > 600).
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.max_times = crawler.settings.getint("REDIRECT_MAX_TIMES", 20)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RedirectGuardMiddleware:
        if not crawler.settings.getbool("REDIRECT_ENABLED", True):
            raise NotConfigured("REDIRECT_ENABLED is False")
        return cls(crawler)

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        location = response.headers.get("Location")
        if (
            response.status not in REDIRECT_STATUSES
            or location is None
            or request.meta.get("dont_redirect", False)
        ):
            return response
        raw = safe_url_string(location)
        if raw.startswith("//"):
            raw = f"{urlparse_cached(request).scheme}:{raw}"
        target = urljoin(request.url, raw)
        allowed = list(getattr(self.crawler.spider, "allowed_domains", None) or [])
        host = urlsplit(target).hostname
        if not host_allowed(host, allowed):
            raise runs.RefusedRequest(runs.OFFSITE, f"redirect to {target}")
        chain = [*request.meta.get("redirect_urls", []), request.url]
        if _same(target) in {_same(url) for url in chain}:
            raise runs.RefusedRequest(runs.REDIRECT_LOOP, " -> ".join([*chain, target]))
        if len(chain) > self.max_times:
            raise runs.RefusedRequest(runs.REDIRECT_LIMIT, f"{len(chain)} redirects, at {target}")
        if canonical_url(target) == canonical_url(request.url):
            request.dont_filter = True  # the redirect copies it: another form of this page
        return response


# -- boundaries ------------------------------------------------------------------------


class SiteBoundaryMiddleware:
    """Keeps the crawl on its site and off local networks.

    Refuses a request whose host is not in the spider's ``allowed_domains``
    (``offsite``), and one whose connection address is private, loopback,
    link-local or unspecified (``private_address``) unless it is in
    ``NEWSCRAWL_ALLOWED_ADDRESSES``. The connection address is the proxy's when
    the request goes through one (``meta["proxy"]``, set by HttpProxyMiddleware,
    so place this after it: priority > 750), else the host's, resolved with the
    crawler's (threaded, caching) resolver so the reactor never blocks. A host
    that does not resolve is let through: its download fails (``dns``).

    Settings: ``NEWSCRAWL_BOUNDARY_ENABLED`` (True), ``NEWSCRAWL_ALLOWED_ADDRESSES``
    (empty: addresses or networks, e.g. ``127.0.0.1`` for a local proxy).
    Stats: ``newscrawl/boundary/offsite``, ``newscrawl/boundary/private_address``.
    """

    def __init__(self, crawler: Crawler, allowed: list[IPNetwork]) -> None:
        self.crawler = crawler
        self.allowed = allowed
        self._verdicts: dict[str, str | None] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SiteBoundaryMiddleware:
        if not crawler.settings.getbool("NEWSCRAWL_BOUNDARY_ENABLED", True):
            raise NotConfigured("NEWSCRAWL_BOUNDARY_ENABLED is False")
        allowed = parse_networks(crawler.settings.getlist("NEWSCRAWL_ALLOWED_ADDRESSES", []))
        return cls(crawler, allowed)

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        host = urlparse_cached(request).hostname
        allowed = list(getattr(self.crawler.spider, "allowed_domains", None) or [])
        if not host_allowed(host, allowed):
            self._count(runs.OFFSITE)
            raise runs.RefusedRequest(runs.OFFSITE, f"{host} is not a host of the site")
        proxy = request.meta.get("proxy")
        target = urlsplit(proxy if "://" in proxy else f"//{proxy}").hostname if proxy else host
        if not target:
            return
        if target not in self._verdicts:
            self._verdicts[target] = await self._refusal(target)
        why = self._verdicts[target]
        if why is not None:
            self._count(runs.PRIVATE_ADDRESS)
            via = "proxy " if proxy else ""
            raise runs.RefusedRequest(
                runs.PRIVATE_ADDRESS,
                f"{via}{target} is a {why} address (allow it with NEWSCRAWL_ALLOWED_ADDRESSES)",
            )

    async def _refusal(self, host: str) -> str | None:
        if is_ip(host):
            return address_refusal(host, self.allowed)
        from twisted.internet import reactor

        try:
            address: Any = await maybe_deferred_to_future(reactor.resolve(host))  # type: ignore[arg-type]
        except DNSLookupError:
            return None
        why = address_refusal(str(address), self.allowed)
        return f"{why} ({host} = {address})" if why else None

    def _count(self, reason: str) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"newscrawl/boundary/{reason}")


# -- user agent ------------------------------------------------------------------------


class ContactUserAgentMiddleware(UserAgentMiddleware):
    """Sends ``USER_AGENT`` with ``{contact}`` replaced by ``NEWSCRAWL_CONTACT``, so
    the contact can be set on its own (``-s NEWSCRAWL_CONTACT=mailto:you@example.org``).
    Replaces Scrapy's UserAgentMiddleware. Stats: ``newscrawl/user_agent``."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ContactUserAgentMiddleware:
        agent = user_agent_for(
            str(crawler.settings.get("USER_AGENT") or ""),
            crawler.settings.get("NEWSCRAWL_CONTACT"),
        )
        if not crawler.settings.get("NEWSCRAWL_CONTACT"):
            logger.warning("NEWSCRAWL_CONTACT is empty: the user agent names no contact")
        mw = cls(agent)
        if crawler.stats is not None:
            crawler.stats.set_value("newscrawl/user_agent", agent)
        return mw
