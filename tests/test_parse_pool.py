"""The parse processes (newscrawl.extract.pool): a page read in a worker is
the page read inline, and a worker that dies loses no page."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

from newscrawl.dedup.index import Entry, make_entries
from newscrawl.dedup.minhash import make_scheme
from newscrawl.extract import read
from newscrawl.extract.pool import ParsePool
from newscrawl.sites import finews

#: real post pages, as the site serves them
POSTS = sorted((Path(__file__).resolve().parent / "golden").glob("*.html"))
URL = "https://finews.withounder.com/dazhongribao/2022/02/18/{}"


def _pages() -> list[tuple[bytes, str, str, str]]:
    return [(path.read_bytes(), "utf-8", URL.format(path.name), read.POST) for path in POSTS]


async def _read_all(pool: ParsePool, pages: list[tuple[Any, ...]]) -> list[read.PageRead]:
    try:
        return list(await asyncio.gather(*(pool.page(*page) for page in pages)))
    finally:
        pool.close()


def test_a_page_read_in_a_worker_is_the_page_read_inline() -> None:
    pages = _pages()
    assert len(pages) >= 5
    inline = asyncio.run(_read_all(ParsePool(0), pages))
    workers = asyncio.run(_read_all(ParsePool(2), pages))
    assert workers == inline
    assert sum(page.post is not None and bool(page.post.body) for page in inline) >= 5
    assert all(page.links for page in inline)


def test_share_json_read_in_a_worker() -> None:
    body = b'{"title": "T", "text": "<p>\\u6b63\\u6587</p>"}'

    async def both() -> tuple[read.ShareRead, read.ShareRead]:
        pool = ParsePool(1)
        try:
            return await pool.share(body), await pool.share(b"{oops")
        finally:
            pool.close()

    good, bad = asyncio.run(both())
    assert good == read.read_share(body)
    assert bad.share is None and bad.bad == "invalid_json"


def test_a_worker_that_dies_loses_no_page() -> None:
    """Kill the worker while pages are in flight: every page is still read
    (inline from then on) and the pool says it broke."""
    pages = _pages() * 20

    async def run() -> tuple[list[read.PageRead], bool]:
        pool = ParsePool(1)
        first = await pool.page(*pages[0])
        assert not pool.broken
        tasks = [asyncio.ensure_future(pool.page(*page)) for page in pages]
        await asyncio.sleep(0)
        (worker,) = pool._workers
        assert worker._proc is not None
        os.kill(worker._proc.pid, signal.SIGKILL)
        try:
            return [first, *await asyncio.gather(*tasks)], pool.broken
        finally:
            pool.close()

    results, broken = asyncio.run(run())
    assert broken
    assert len(results) == len(pages) + 1
    assert results[1:] == [read.read_page(*page) for page in _pages()] * 20


def test_what_reading_raises_in_the_worker_is_raised_in_the_caller() -> None:
    """A page that makes reading raise raises in the caller, with its own traceback."""

    async def run() -> BaseException | None:
        pool = ParsePool(1)
        try:
            await pool.page(None, "utf-8", URL.format("x.html"), read.POST)  # type: ignore[arg-type]
        except Exception as exc:
            return exc
        finally:
            pool.close()
        return None

    error = asyncio.run(run())
    assert isinstance(error, AttributeError)  # None has no .decode: raised here, not a WorkerError


def test_dedup_entries_made_in_a_worker_are_the_entries_made_inline() -> None:
    """The near-duplicate index's signatures of the real posts' bodies: the
    same from a worker as inline; a closed pool makes them inline, and is not
    taken for a broken one."""
    pages = [read.read_page(*page) for page in _pages()]
    articles = [
        (f"finews:{n}", page.post.body, page.post.published_at)
        for n, page in enumerate(pages)
        if page.post is not None
    ]
    scheme = make_scheme()

    async def in_pool() -> tuple[tuple[list[Entry], int], tuple[list[Entry], int], ParsePool]:
        pool = ParsePool(1)
        try:
            offloaded = await pool.entries(articles, scheme, 100)
            assert pool.offloaded
            # the worker's own answer (pool.entries would read inline after a WorkerError)
            (worker,) = pool._workers
            direct = await worker.submit("entries", (articles, scheme, 100))
            assert [e.text_hash for e in direct[0]] == [e.text_hash for e in offloaded[0]]
        finally:
            pool.close()
        return offloaded, await pool.entries(articles, scheme, 100), pool

    (worker, short), (after_close, _), pool = asyncio.run(in_pool())
    inline, inline_short = make_entries(articles, scheme, 100)
    assert len(inline) >= 5 and short == inline_short
    for got in (worker, after_close):
        assert [(e.key, e.text_hash, e.length, e.bands) for e in got] == [
            (e.key, e.text_hash, e.length, e.bands) for e in inline
        ]
        assert all(list(a.sig) == list(b.sig) for a, b in zip(got, inline, strict=True))
    assert pool.closed and not pool.broken and not pool.offloaded


def test_a_worker_gives_the_canonical_form_of_each_link_and_declared_url() -> None:
    """Made in the worker by the site's own function, so the crawler can
    remember them instead of making them again."""
    pages = _pages()
    inline = asyncio.run(_read_all(ParsePool(0), [(*page, finews.canonical_url) for page in pages]))
    workers = asyncio.run(
        _read_all(ParsePool(1), [(*page, finews.canonical_url) for page in pages])
    )
    assert workers == inline
    for page in workers:
        assert page.post is not None
        wanted = [*page.links, *page.post.declared_urls]
        assert page.canonical == {url: finews.canonical_url(url) for url in wanted}
    assert any(url != form for page in workers for url, form in page.canonical.items())


def test_closing_the_pool_with_a_large_answer_in_flight_neither_waits_nor_loses_it() -> None:
    """A call can still be in a worker when the pool is closed; its answer
    (here 300 entries, ~400 kB) is larger than a pipe holds. Closing reads it:
    no wait for the kill timeout, and the call gets the worker's answer."""
    # short ASCII bodies: the request fits in the pipe, the answer does not
    articles = [(f"k{n}", f"{n} " + "abcdefghij " * 11, None) for n in range(300)]
    scheme = make_scheme()

    async def close_under_a_call() -> tuple[float, tuple[list[Entry], int], bool]:
        pool = ParsePool(1)
        await pool.entries(articles[:1], scheme, 100)  # the worker is up
        call = asyncio.ensure_future(pool.entries(articles, scheme, 100))
        for _ in range(3):  # the call runs and its frame is written: the worker has it
            await asyncio.sleep(0)
        started = time.monotonic()
        pool.close()
        seconds = time.monotonic() - started
        return seconds, await call, pool.broken

    seconds, (entries, short), broken = asyncio.run(close_under_a_call())
    assert seconds < 5, seconds
    assert not broken
    inline, inline_short = make_entries(articles, scheme, 100)
    assert [e.text_hash for e in entries] == [e.text_hash for e in inline]
    assert short == inline_short == 0 and len(entries) == 300


def test_waiting_for_calls_in_flight_before_closing() -> None:
    """What the spider does when it closes: calls in flight (a large request,
    more than a pipe holds) get the worker's answer, then the pool closes."""
    pages = [read.read_page(*page) for page in _pages()]
    bodies = [page.post.body for page in pages if page.post is not None]
    articles = [(f"finews:{n}", bodies[n % len(bodies)] + str(n), None) for n in range(400)]
    scheme = make_scheme()

    async def wait_then_close() -> tuple[bool, tuple[list[Entry], int]]:
        pool = ParsePool(1)
        call = asyncio.ensure_future(pool.entries(articles, scheme, 100))
        await asyncio.sleep(0)
        await pool.wait_idle()
        done = call.done()
        pool.close()
        return done, await call

    done, (entries, _short) = asyncio.run(wait_then_close())
    assert done
    assert [e.text_hash for e in entries] == [
        e.text_hash for e in make_entries(articles, scheme, 100)[0]
    ]
