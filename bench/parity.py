"""Parity of two replica proxies: nginx must answer what the Python replica answers.

For a sample of URLs of a built site (every kind of page, the URL forms the
crawler meets, misses and third-party hosts), both proxies get the same
absolute-form request; status, body, media type and redirect target must be
the same. Validators (``ETag``, ``Last-Modified``) and ``Server`` may differ.
"""

from __future__ import annotations

import http.client
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from newscrawl.replica.site import ALIAS_HOST, MAIN_HOST, OLD_SHARE_HOST, SHARE_HOST

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """What a proxy answered, reduced to what must agree."""

    status: int
    media_type: str
    body: bytes
    location: str | None


class ParityError(AssertionError):
    """nginx and the Python replica answered differently."""


def as_http(url: str) -> str:
    """The http form of a replica URL (the bench crawls http).

    >>> as_http("https://finews.withounder.com/a.html?x=1")
    'http://finews.withounder.com/a.html?x=1'
    >>> as_http("http://finews.zning.xyz/")
    'http://finews.zning.xyz/'
    """
    return "http://" + url.split("://", 1)[1] if url.startswith("https://") else url


def media_type(content_type: str | None) -> str:
    """A Content-Type reduced to media type and charset, lower case, no spaces.

    >>> media_type("text/html; charset=UTF-8")
    'text/html;charset=utf-8'
    >>> media_type(None)
    ''
    """
    if not content_type:
        return ""
    return ";".join(part.strip().lower() for part in content_type.split(";") if part.strip())


def sample_urls(site_dir: Path, posts: int = 40, shares: int = 20) -> list[str]:
    """http URLs to compare: pages of every kind from the site's manifest plus
    the URL forms and misses the proxies must treat alike."""
    manifest = json.loads((Path(site_dir) / "manifest.json").read_text(encoding="utf-8"))
    pages = [as_http(url) for url in manifest["pages"]]
    by_kind: dict[str, list[str]] = {"post": [], "category": [], "share": [], "other": []}
    for url in pages:
        path = urlsplit(url).path
        if "GetNewsText.do" in url:
            by_kind["share"].append(url)
        elif path.startswith("/category/"):
            by_kind["category"].append(url)
        elif path.endswith(".html"):
            by_kind["post"].append(url)
        else:
            by_kind["other"].append(url)
    step = max(1, len(by_kind["post"]) // posts)
    chosen = by_kind["post"][::step][:posts]
    chosen += by_kind["category"][:10]
    chosen += by_kind["share"][:: max(1, len(by_kind["share"]) // shares)]
    chosen += by_kind["other"][:12]
    main, share = f"http://{MAIN_HOST}", f"http://{SHARE_HOST}"
    folders = [u for u in by_kind["other"] if u.endswith("/") and u.count("/") == 4][:3]
    spaced = [u for u in by_kind["category"] if "%20" in u][:2]
    post = by_kind["post"][0] if by_kind["post"] else f"{main}/"
    share_json = by_kind["share"][0] if by_kind["share"] else f"{share}/NewsData/GetNewsText.do"
    chosen += spaced + [u.rstrip("/") for u in folders]
    chosen += [
        f"{main}/",
        f"{main}/index.html",
        f"{main}/feed.xml",
        f"{main}/404.html",
        f"{main}/robots.txt",
        f"{main}/no/such/page.html",
        f"{main}/category/",
        f"{main}/assets/css/style.css",
        post + "?from=home",
        post.replace(MAIN_HOST, ALIAS_HOST),
        post.replace(".html", ""),
        share_json.replace(SHARE_HOST, OLD_SHARE_HOST),
        share_json + "&_=123",
        f"{share}/NewsData/GetNewsText.do?id=NW000000000000000000",
        f"{share}/NewsData/GetNewsText.do",
        f"{share}/NewsData/GetNewsText.do?id=../404",
        f"{share}/html_News/NewsShare.html?infoCode=NW1",
        f"{share}/robots.txt",
        "http://finance.eastmoney.com/news/1344,1.html",
    ]
    return list(dict.fromkeys(chosen))


def fetch(proxy_port: int, url: str, conn: http.client.HTTPConnection | None = None) -> Answer:
    """GET ``url`` through the proxy on ``proxy_port`` (absolute-form request)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=10)
    try:
        conn.request("GET", url, headers={"Host": urlsplit(url).netloc})
        response = conn.getresponse()
        body = response.read()
        return Answer(
            status=response.status,
            media_type=media_type(response.getheader("Content-Type")),
            body=body,
            location=response.getheader("Location"),
        )
    finally:
        if own:
            conn.close()


def compare(reference: Answer, other: Answer) -> list[str]:
    """The differences that matter between two answers (empty: they agree).

    >>> a = Answer(200, "text/html;charset=utf-8", b"x", None)
    >>> compare(a, a)
    []
    >>> compare(a, Answer(404, "text/html;charset=utf-8", b"y", None))
    ['status 200 != 404']
    """
    if reference.status != other.status:
        return [f"status {reference.status} != {other.status}"]
    problems = []
    if reference.status in (301, 302):
        if reference.location != other.location:
            problems.append(f"Location {reference.location!r} != {other.location!r}")
        return problems
    if reference.status == 502:
        return problems  # the text of a refusal may differ
    if reference.media_type != other.media_type:
        problems.append(f"Content-Type {reference.media_type!r} != {other.media_type!r}")
    if reference.body != other.body:
        problems.append(f"body differs ({len(reference.body)} vs {len(other.body)} bytes)")
    return problems


def check_parity(reference_port: int, nginx_port: int, urls: list[str]) -> dict[str, object]:
    """Fetch every URL through both proxies; raise :class:`ParityError` on any
    mismatch, else return a summary (``urls``, ``statuses``)."""
    mismatches: list[str] = []
    statuses: dict[str, int] = {}
    ref_conn = http.client.HTTPConnection("127.0.0.1", reference_port, timeout=10)
    ngx_conn = http.client.HTTPConnection("127.0.0.1", nginx_port, timeout=10)
    try:
        for url in urls:
            reference = fetch(reference_port, url, ref_conn)
            other = fetch(nginx_port, url, ngx_conn)
            statuses[str(reference.status)] = statuses.get(str(reference.status), 0) + 1
            mismatches += [f"{url}: {problem}" for problem in compare(reference, other)]
    finally:
        ref_conn.close()
        ngx_conn.close()
    if mismatches:
        raise ParityError(
            f"nginx differs from the Python replica on {len(mismatches)} of {len(urls)} "
            "checks:\n  " + "\n  ".join(mismatches[:30])
        )
    logger.info("parity: %d URLs answered alike (%s)", len(urls), statuses)
    return {"urls": len(urls), "statuses": dict(sorted(statuses.items()))}
