"""The replica's fault plan: what it plans (every kind, the rate, which articles
stay storable) and how the proxy serves each fault, over real HTTP through a
``python -m newscrawl.replica serve`` process on loopback.

Each test fetches the URLs of its own faults: tries are counted per page by
the server, so no two tests touch the same faulty page.
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from newscrawl.replica.build import build_site
from newscrawl.replica.faults import (
    BLOCKING,
    CHARSET,
    EMPTY,
    ENORMOUS,
    GONE,
    GZIP_BOMB,
    INVALID_JSON,
    REDIRECT_LOOP,
    RESET,
    SLOW,
    SOFT_404,
    STATUS,
    TRUNCATED,
    Fault,
    FaultPlan,
    plan_faults,
    url_key,
)
from newscrawl.replica.process import ReplicaProcess

SEED = 5
RATE = 0.12
SLOW_SECONDS = 1.0
ENORMOUS_BYTES = 1 << 20
BOMB_BYTES = 8 << 20
MAIN = "finews.withounder.com"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faulty") / "site"
    build_site(
        out,
        articles=200,
        seed=SEED,
        faults=RATE,
        fault_options={
            "slow_seconds": SLOW_SECONDS,
            "enormous_bytes": ENORMOUS_BYTES,
            "bomb_bytes": BOMB_BYTES,
        },
    )
    return out


@pytest.fixture(scope="module")
def plan(site: Path) -> FaultPlan:
    loaded = FaultPlan.load(site)
    assert loaded is not None
    return loaded


@pytest.fixture(scope="module")
def expected(site: Path) -> dict[str, dict[str, Any]]:
    lines = (site / "expected.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["key"]: r for r in map(json.loads, lines)}


@pytest.fixture(scope="module")
def replica(site: Path) -> Iterator[ReplicaProcess]:
    with ReplicaProcess.start(site, access_log=site / "access.jsonl") as proc:
        yield proc


def get(
    replica: ReplicaProcess, url: str, timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    """One plain-HTTP proxy request (absolute form), redirects not followed."""
    conn = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=timeout)
    try:
        conn.request("GET", url.replace("https://", "http://", 1))
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def pick(plan: FaultPlan, kind: str, **want: Any) -> Fault:
    """The first fault of ``kind`` whose fields match ``want``."""
    for fault in plan.faults:
        if fault.kind == kind and all(getattr(fault, k) == v for k, v in want.items()):
            return fault
    raise AssertionError(f"no {kind} fault with {want}")


def clean_body(site: Path, url: str) -> bytes:
    path = url.split(MAIN, 1)[1]
    return (site / "www" / MAIN / path.lstrip("/")).read_bytes()


# -- planning ----------------------------------------------------------------------------


def test_plan_holds_every_kind_at_the_rate(plan: FaultPlan) -> None:
    kinds = {f.kind for f in plan.faults}
    assert kinds >= {STATUS, RESET, SLOW, CHARSET, GONE, SOFT_404, EMPTY, TRUNCATED}
    assert kinds >= {INVALID_JSON, ENORMOUS, GZIP_BOMB, REDIRECT_LOOP}
    assert {(f.charset, f.header) for f in plan.faults if f.kind == CHARSET} >= {
        ("gbk", None),
        ("gb18030", None),
        ("gb2312", None),
        ("gbk", "utf-8"),
    }
    assert {f.where for f in plan.faults if f.kind == RESET} == {"before", "mid"}
    assert any(f.times == 2 for f in plan.faults if f.kind == STATUS)
    counts = plan.counts
    assert counts["faulty_urls"] >= RATE * counts["site_urls"]
    keys = [url_key(f.url) for f in plan.faults]
    assert None not in keys and len(keys) == len(set(keys))  # one fault per page
    # a fault fails for good (and says how the crawler must record it) exactly
    # when it never stops; a re-encoded page is a fault that must be read right
    for fault in plan.faults:
        assert (fault.expect is None) == (fault.times is not None or fault.kind == CHARSET), fault
    by_url = {e["url"]: e["reason"] for e in plan.expect_failed if "url" in e}
    assert all(by_url[f.url] == f.expect for f in plan.faults if f.expect)
    reasons = {e["reason"] for e in plan.expect_failed}
    assert reasons >= {"trap", "redirect_limit", "offsite", "robots_txt", "redirect_loop"}
    assert reasons >= {"http_503", "http_404", "timeout", "connection_lost", "too_large"}
    assert reasons >= {"decompression_bomb", "bad_page:empty", "bad_page:truncated"}
    assert reasons >= {"bad_page:not_found", "bad_share:invalid_json"}


def test_storable_says_which_articles_survive(
    plan: FaultPlan, expected: dict[str, dict[str, Any]]
) -> None:
    blocking = {kind for kind, _params, _expect, _n in BLOCKING}
    lost = {
        f.article
        for f in plan.faults
        if f.expect and f.kind in blocking and f.article and MAIN in f.url
    }
    # transient faults, re-encoded pages and dead share JSON leave the article storable
    survive = {
        f.article for f in plan.faults if f.article and (f.expect is None or MAIN not in f.url)
    }
    assert lost and survive and not lost & survive
    for key, record in expected.items():
        assert isinstance(record["storable"], bool) and isinstance(record["faults"], list)
        if record["storable"]:
            assert record["reachable"], key
        if key in lost:
            assert not record["storable"], key
        if key in survive:
            assert record["storable"], key
    # the plan's counts agree with the records
    assert plan.counts["storable"] == sum(r["storable"] for r in expected.values())
    assert plan.counts["storable"] < plan.counts["reachable"] - len(lost) + 1


def test_plan_is_deterministic(site: Path, plan: FaultPlan) -> None:
    before = (site / "faults.json").read_bytes(), (site / "expected.jsonl").read_bytes()
    again = plan_faults(
        site,
        seed=SEED,
        rate=RATE,
        slow_seconds=SLOW_SECONDS,
        enormous_bytes=ENORMOUS_BYTES,
        bomb_bytes=BOMB_BYTES,
    )
    assert again.to_json() == plan.to_json()
    assert ((site / "faults.json").read_bytes(), (site / "expected.jsonl").read_bytes()) == before


def test_a_build_without_faults_removes_the_plan(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_site(out, articles=40, seed=2, faults=0.2)
    assert (out / "faults.json").is_file()
    build_site(out, articles=40, seed=2)
    assert not (out / "faults.json").exists()
    records = [json.loads(line) for line in (out / "expected.jsonl").read_text().splitlines()]
    assert all(r["storable"] == r["reachable"] and r["faults"] == [] for r in records)


# -- serving -------------------------------------------------------------------------------


def test_error_status_for_the_first_tries_then_the_page(
    replica: ReplicaProcess, plan: FaultPlan
) -> None:
    fault = pick(plan, STATUS, times=2)
    statuses = [get(replica, fault.url)[0] for _ in range(3)]
    assert statuses == [fault.status, fault.status, 200]
    late = pick(plan, STATUS, retry_after=1)
    status, headers, _ = get(replica, late.url)
    assert status == late.status and headers["retry-after"] == "1"


def test_a_permanent_status_never_ends(replica: ReplicaProcess, plan: FaultPlan) -> None:
    fault = pick(plan, STATUS, times=None, status=502)
    assert [get(replica, fault.url)[0] for _ in range(5)] == [502] * 5


def test_every_url_form_of_a_page_shares_its_fault(
    replica: ReplicaProcess, plan: FaultPlan
) -> None:
    dead = next(f for f in plan.faults if "/category/" in f.url and f.times is None)
    slug = dead.url.rsplit("/category/", 1)[1].removesuffix(".html")
    for url in (
        dead.url,
        dead.url.replace(MAIN, "finews.zning.me") + "?page=2",
        f"http://{MAIN}/{slug}/",
        f"http://{MAIN}/{slug}/index.html",
    ):
        assert get(replica, url)[0] == 503, url


def test_reset_before_the_answer(replica: ReplicaProcess, plan: FaultPlan) -> None:
    fault = pick(plan, RESET, where="before", times=1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        get(replica, fault.url)
    assert get(replica, fault.url)[0] == 200


def test_reset_in_the_middle_of_the_body(
    replica: ReplicaProcess, plan: FaultPlan, site: Path
) -> None:
    fault = pick(plan, RESET, where="mid", times=None)
    for _ in range(2):
        with pytest.raises(http.client.IncompleteRead) as info:
            get(replica, fault.url)
        assert 0 < len(info.value.partial) < len(clean_body(site, fault.url))


def test_slow_answer_then_a_fast_one(replica: ReplicaProcess, plan: FaultPlan) -> None:
    fault = pick(plan, SLOW, times=1)
    started = time.monotonic()
    with pytest.raises(socket.timeout):
        get(replica, fault.url, timeout=SLOW_SECONDS / 4)
    assert time.monotonic() - started < SLOW_SECONDS
    started = time.monotonic()
    assert get(replica, fault.url)[0] == 200
    assert time.monotonic() - started < SLOW_SECONDS / 2


def test_gbk_pages_with_the_charset_in_meta_only_or_a_lying_header(
    replica: ReplicaProcess, plan: FaultPlan, site: Path
) -> None:
    declaration = re.compile(
        r'<meta (?:charset="(gbk|gb18030)"|http-equiv="Content-Type" content="text/html; '
        r'charset=(gb2312)")>'
    )
    for charset, header in (("gbk", None), ("gb18030", None), ("gb2312", None), ("gbk", "utf-8")):
        fault = pick(plan, CHARSET, charset=charset, header=header)
        status, headers, body = get(replica, fault.url)
        assert status == 200
        want_type = "text/html; charset=utf-8" if header else "text/html"
        assert headers["content-type"] == want_type
        with pytest.raises(UnicodeDecodeError):
            body.decode("utf-8")
        text = body.decode("gb18030")
        found = declaration.search(text)
        assert found is not None and charset in found.groups(), text[:300]
        clean = clean_body(site, fault.url).decode("utf-8")
        assert declaration.sub('<meta charset="UTF-8">', text, count=1) == clean


def test_bad_pages(replica: ReplicaProcess, plan: FaultPlan, site: Path) -> None:
    gone = pick(plan, GONE)
    status, _, body = get(replica, gone.url)
    assert status == 404 and "404 找不到页面".encode() in body
    soft = pick(plan, SOFT_404)
    status, _, body = get(replica, soft.url)
    assert status == 200 and "404 找不到页面".encode() in body
    status, headers, body = get(replica, pick(plan, EMPTY).url)
    assert (status, body, headers["content-length"]) == (200, b"", "0")
    cut = pick(plan, TRUNCATED)
    status, _, body = get(replica, cut.url)
    clean = clean_body(site, cut.url)
    assert status == 200 and clean.startswith(body) and len(body) < len(clean)
    content = body.split(b"<section>", 1)[1]  # (the head's og:description holds the raw post)
    assert b"</html>" not in body and b"</section>" not in body and "返回".encode() not in content
    status, _, body = get(replica, pick(plan, ENORMOUS).url)
    assert status == 200 and len(body) == ENORMOUS_BYTES and body.rstrip().endswith(b"</html>")
    status, headers, body = get(replica, pick(plan, GZIP_BOMB).url)
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert len(body) < BOMB_BYTES // 100 and len(gzip.decompress(body)) == BOMB_BYTES
    status, _, body = get(replica, pick(plan, INVALID_JSON).url)
    assert status == 200 and body.startswith(b'{"')
    with pytest.raises(ValueError):
        json.loads(body)


def test_redirect_loop(replica: ReplicaProcess, plan: FaultPlan) -> None:
    fault = pick(plan, REDIRECT_LOOP)
    path = fault.url.split(MAIN, 1)[1]
    status, headers, _ = get(replica, f"http://{MAIN}{path}")
    assert status == 301 and headers["location"] == f"https://{MAIN}{path}"
    status, headers, _ = get(replica, f"http://finews.zning.me{path}")
    assert headers["location"] == f"https://{MAIN}{path}"


def test_traps_go_on_forever(replica: ReplicaProcess, plan: FaultPlan) -> None:
    status, _, body = get(replica, f"http://{MAIN}/page987/")
    assert status == 200 and b'href="/page988/"' in body
    status, _, body = get(replica, f"http://{MAIN}/calendar/2020/03/01/archive.html")
    assert status == 200 and b'href="/calendar/2020/02/29/archive.html"' in body
    hop = next(e["url"] for e in plan.expect_failed if e.get("reason") == "redirect_limit")
    status, headers, _ = get(replica, hop.replace("n=1", "n=41"))
    assert status == 302 and headers["location"].endswith("hop.html?n=42")
    jump = next(e["url"] for e in plan.expect_failed if e.get("reason") == "offsite")
    status, headers, _ = get(replica, jump)
    assert status == 302 and "example.net" in headers["location"]
    status, headers, body = get(replica, f"http://{MAIN}/robots.txt")
    assert status == 200 and b"Disallow: /private/" in body


def test_listing_pages_get_the_plans_extra_links(replica: ReplicaProcess, plan: FaultPlan) -> None:
    home = f"https://{MAIN}/"
    hrefs = plan.links[home]
    assert "/page2/" in hrefs and any("?utm_source=" in h for h in hrefs)
    status, _, body = b"", {}, b""
    for _ in range(3):  # the home page has a transient fault of its own
        status, _, body = get(replica, home)
        if status == 200:
            break
    assert status == 200
    for href in hrefs:
        assert f'href="{href.replace("&", "&amp;")}"'.encode() in body, href


def test_the_access_log_names_the_fault_and_the_agent(
    replica: ReplicaProcess, plan: FaultPlan
) -> None:
    fault = pick(plan, RESET, where="before", times=None)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        get(replica, fault.url)
    assert replica.access_log is not None
    deadline = time.monotonic() + 5
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        lines = replica.access_log.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines]
        if any(r.get("fault") == "reset:before" for r in records):
            break
        time.sleep(0.05)
    assert any(r.get("fault") == "reset:before" and r["status"] == 0 for r in records)
    assert all("agent" in r for r in records)


def test_no_faults_serves_the_clean_site(site: Path, plan: FaultPlan) -> None:
    fault = pick(plan, STATUS, times=None, status=502)
    with ReplicaProcess.start(site, faults=False) as clean:
        assert get(clean, fault.url)[0] == 200
        assert get(clean, f"http://{MAIN}/robots.txt")[0] == 404
        assert get(clean, f"http://{MAIN}/page2/")[0] == 404


def test_https_only_redirects_http_and_the_alias_host(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_site(out, articles=40, seed=4)
    FaultPlan(rate=0.0, traps=False, robots="", https_only=True).save(out)
    with ReplicaProcess.start(out) as proxy:
        for url in (f"http://{MAIN}/category/emnews.html?x=1", "http://finews.zning.me/emnews/"):
            status, headers, _ = get(proxy, url)
            path = urlsplit(url).path + ("?x=1" if "?" in url else "")
            assert (status, headers["location"]) == (301, f"https://{MAIN}{path}")
        status, _, _ = get(proxy, "http://finews.zning.xyz/NewsData/GetNewsText.do?id=1")
        assert status == 200  # the share host is left alone
