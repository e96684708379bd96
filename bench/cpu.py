"""Per-article CPU time of what the product does to each page, over saved pages.

The saved pages are a built replica's static tree: every post page with the
share JSON its share link names. Each article goes through the same calls as
in a crawl, timed stage by stage:

``links``      the spider's link following on the post page (the bare spider
               does this too: it is part of the limit, shown for scale)
``extract``    :func:`newscrawl.extract.post.parse_post_page` (given the page
               the links were read from, as the spider does)
``share``      :func:`newscrawl.extract.share.parse_share_json` + ``merge_share``
``item``       the spider's ``Article`` construction
``clean``      :class:`newscrawl.pipelines.clean.CleanPipeline`
``validate``   :func:`newscrawl.pipelines.validate.check`
``dedup``      the near-duplicate index entry (normalised text, MinHash
               signature, band keys: ``newscrawl.dedup.index.make_entry``)
``document``   :func:`newscrawl.storage.documents.to_document` (done by the
               store pipeline on the reactor thread, before the write)

A cProfile of one pass over all articles is saved (top functions by own time).
"""

from __future__ import annotations

import cProfile
import inspect
import io
import logging
import pstats
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from itemadapter import ItemAdapter
from scrapy.http import HtmlResponse

from newscrawl.extract.post import parse_post_page
from newscrawl.extract.share import merge_share, parse_share_json
from newscrawl.pipelines.clean import CleanPipeline
from newscrawl.pipelines.validate import check
from newscrawl.replica.site import MAIN_HOST, SHARE_HOST, SHARE_JSON_DIR, WWW_DIR
from newscrawl.sites import finews
from newscrawl.spiders.finews import FinewsSpider
from newscrawl.storage.documents import to_document

logger = logging.getLogger(__name__)

#: parse_post_page reuses an already parsed page (``selector=``)
_TAKES_SELECTOR = "selector" in inspect.signature(parse_post_page).parameters
STAGES = ("links", "extract", "share", "item", "clean", "validate", "dedup", "document")
#: the stages that are per-article product work (links are the limit's too)
ARTICLE_STAGES = ("extract", "share", "item", "clean", "validate", "dedup", "document")


@dataclass
class SavedPage:
    """A post page as served, with the share JSON its share link names."""

    url: str
    html: bytes
    share: bytes | None


def saved_pages(site_dir: Path, limit: int | None = None) -> list[SavedPage]:
    """The post pages of a built site (sorted by path), each with its share JSON."""
    root = Path(site_dir) / WWW_DIR / MAIN_HOST
    share_root = Path(site_dir) / WWW_DIR / SHARE_HOST / SHARE_JSON_DIR
    pages: list[SavedPage] = []
    for path in sorted(root.rglob("*.html")):
        url = f"http://{MAIN_HOST}/" + quote(path.relative_to(root).as_posix())
        if finews.route(url) != finews.POST:
            continue
        code = finews.info_code_of(url)
        share_file = share_root / f"{code}.json" if code else None
        share = share_file.read_bytes() if share_file and share_file.is_file() else None
        pages.append(SavedPage(url, path.read_bytes(), share))
        if limit is not None and len(pages) >= limit:
            break
    return pages


def dedup_signature() -> tuple[str | None, Callable[[str], Any] | None]:
    """What the dedup pipeline computes per article in its worker thread (the
    index entry: normalised text, MinHash signature, band keys), with the
    project's dedup settings; (None, None) while ``newscrawl.dedup`` is missing."""
    try:
        from newscrawl.dedup.index import make_entry
        from newscrawl.pipelines.dedup import DEFAULT_MIN_CHARS, scheme_from_settings
        from newscrawl.runner import project_settings
    except ImportError as exc:
        logger.warning("no dedup signature to time: %s", exc)
        return None, None
    settings = project_settings()
    scheme = scheme_from_settings(settings)
    min_chars = settings.getint("NEWSCRAWL_NEARDUP_MIN_CHARS", DEFAULT_MIN_CHARS)

    def entry(body: str) -> Any:
        return make_entry("bench", body, None, scheme, min_chars)

    return f"newscrawl.dedup.index.make_entry ({scheme.id})", entry


class _Timer:
    def __init__(self) -> None:
        self.ns = dict.fromkeys(STAGES, 0)

    def run(self, stage: str, func: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter_ns()
        try:
            return func(*args)
        finally:
            self.ns[stage] += time.perf_counter_ns() - started


def _one_pass(
    pages: list[SavedPage],
    timer: _Timer,
    signature: Callable[[str], Any] | None,
    documents: list[Any] | None = None,
) -> int:
    spider = FinewsSpider()
    clean = CleanPipeline()
    articles = 0
    for page in pages:
        response = HtmlResponse(page.url, body=page.html, encoding="utf-8")
        timer.run("links", lambda r=response: sum(1 for _ in _links(r)))
        # as the spider does: the links' parse of the page is reused when it can be
        extra = (response.selector,) if _TAKES_SELECTOR else ()
        fields = timer.run("extract", parse_post_page, response.text, response.url, *extra)
        if fields is None:
            continue
        merged = timer.run("share", _share, fields, page.share)
        item = timer.run("item", spider._article, merged, [response.url])
        item = timer.run("clean", clean.process_item, item)
        timer.run("validate", check, item)
        if signature is not None:
            timer.run("dedup", signature, ItemAdapter(item).get("body") or "")
        doc = timer.run("document", to_document, ItemAdapter(item))
        if documents is not None:
            documents.append(doc)
        articles += 1
    return articles


def article_documents(pages: list[SavedPage]) -> list[Any]:
    """The documents the product would store for ``pages`` (the store's input)."""
    documents: list[Any] = []
    _one_pass(pages, _Timer(), None, documents)
    return documents


def _share(fields: Any, data: bytes | None) -> Any:
    return merge_share(fields, parse_share_json(data) if data is not None else None)


def _links(response: HtmlResponse) -> Iterator[str]:
    """The spider's link following, without the Requests."""
    for href in response.css("a::attr(href)").getall():
        href = href.strip()
        if not href or href.startswith(("#", "javascript:", "mailto:")):
            continue
        url = response.urljoin(href)
        if finews.route(url) in (finews.HOME, finews.CATEGORY, finews.POST):
            yield url


def measure_cpu(
    site_dir: Path, out_dir: Path, *, limit: int | None = None, repeat: int = 3
) -> dict[str, Any]:
    """µs per article of each stage (best of ``repeat`` passes, after a warm-up
    pass), the cProfile top 10 by own time, and the profile saved in
    ``out_dir/cpu-profile.txt``."""
    pages = saved_pages(site_dir, limit)
    if not pages:
        raise ValueError(f"no post pages under {site_dir}")
    signature_name, signature = dedup_signature()
    _one_pass(pages[: min(len(pages), 200)], _Timer(), signature)  # warm-up (imports, caches)
    best: dict[str, int] | None = None
    articles = 0
    for _ in range(repeat):
        timer = _Timer()
        articles = _one_pass(pages, timer, signature)
        if best is None or sum(timer.ns.values()) < sum(best.values()):
            best = dict(timer.ns)
    assert best is not None
    per_article = {stage: round(best[stage] / 1000 / articles, 1) for stage in STAGES}
    total = round(sum(per_article[s] for s in ARTICLE_STAGES), 1)

    profiler = cProfile.Profile()
    profiler.enable()
    _one_pass(pages, _Timer(), signature)
    profiler.disable()
    top, text = _top(profiler, 10)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "cpu-profile.txt").write_text(text, encoding="utf-8")
    profiler.dump_stats(str(out_dir / "cpu-profile.pstats"))
    result = {
        "articles": articles,
        "pages": len(pages),
        "us_per_article": per_article,
        "us_per_article_total": total,
        "dedup_function": signature_name,
        "profile_top10": top,
        "profile_file": str(out_dir / "cpu-profile.txt"),
    }
    logger.info("per-article CPU: %s us (total %s us)", per_article, total)
    return result


def _top(profiler: cProfile.Profile, count: int) -> tuple[list[dict[str, Any]], str]:
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("tottime").print_stats(40)
    stats.sort_stats("cumulative").print_stats(40)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values()) or 1.0
    rows = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:count]
    top = [
        {
            "function": f"{Path(file).name}:{line}({name})",
            "own_seconds": round(entry[2], 4),
            "cumulative_seconds": round(entry[3], 4),
            "calls": entry[1],
            "own_share": round(entry[2] / total, 3),
        }
        for (file, line, name), entry in rows
    ]
    return top, buffer.getvalue()
