"""Build a replica site: post files in, a static tree of every page out.

A built site folder::

    posts/            the post files (Jekyll front matter + body), sub-folders allowed
    share/<code>.json the share service's documents (the generator's; optional)
    site.json         site-wide settings (now, category titles, ...)
    www/<host>/<path> every page as a static file (nginx can serve this tree)
    expected.jsonl    the expected articles (build_site only)
    faults.json       the fault plan (build_site(..., faults=RATE) or plan_faults)
    manifest.json     counts, seed, page list
    tls/replica.pem   the proxy's certificate (made by the server on first use)

For nginx: one server per tree (``finews.zning.me`` is an alias of the main
host, ``choicewzp1.eastmoney.com`` of the share host), ``try_files $uri
$uri/index.html $uri.html =404`` with ``error_page 404 /404.html``, and on the
share host ``/NewsData/GetNewsText.do`` mapped to
``/NewsData/GetNewsText.do/$arg_id.json`` (falling back to ``_notfound.json``).

Files are written only when their bytes change, and those get ``now`` as
mtime (or a second past their old mtime), so a rebuild after an edit moves
``Last-Modified`` of the changed pages only. Pages that are no longer
produced are deleted (a post that leaves the site turns 404, as the real
site's archived posts do).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from newscrawl.items import EXTRACTED_FIELDS
from newscrawl.replica import render
from newscrawl.replica.faults import FAULTS_FILE, plan_faults
from newscrawl.replica.generate import generate
from newscrawl.replica.posts import (
    category_page_path,
    folder_page_path,
    load_posts,
    sample_posts_dir,
    write_post,
)
from newscrawl.replica.reach import reachable_posts
from newscrawl.replica.share import NOT_FOUND_DOC, doc_from_post, share_code
from newscrawl.replica.site import (
    DEFAULT_NOW,
    MAIN_HOST,
    SHARE_HOST,
    SHARE_JSON_DIR,
    SHARE_NOT_FOUND_FILE,
    WWW_DIR,
    Site,
    SiteConfig,
)

logger = logging.getLogger(__name__)

SITE_FILE = "site.json"
SHARE_DIR = "share"
MANIFEST_FILE = "manifest.json"

STYLE_CSS = "body{font:14px/1.5 Helvetica,Arial,sans-serif;color:#595959}.wrapper{width:860px}\n"
SCALE_FIX_JS = "(function(){/* theme-minimal scale fix */})();\n"


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, indent=None).encode("utf-8")


class TreeWriter:
    """Writes files under a root only when their bytes change; tracks what it wrote."""

    def __init__(self, root: Path, mtime: float) -> None:
        self.root = root
        self.mtime = mtime
        self.written: set[Path] = set()
        self.changed = 0

    def write(self, rel: str, data: bytes) -> None:
        """Write ``data`` at ``rel`` unless the file already holds it.

        A changed file gets ``mtime`` as its modification time, or one second
        past its old one when that is not later, so ``Last-Modified`` always
        moves forward when the bytes change (``If-Modified-Since`` stays right).
        """
        path = self.root / rel.lstrip("/")
        self.written.add(path)
        mtime = self.mtime
        try:
            st = path.stat()
            if st.st_size == len(data) and path.read_bytes() == data:
                return
            mtime = max(mtime, float(int(st.st_mtime) + 1))
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
        self.changed += 1

    def prune(self) -> int:
        """Delete files under the root that this build did not write."""
        removed = 0
        if not self.root.exists():
            return 0
        for path in sorted(self.root.rglob("*"), reverse=True):
            if path.is_file() and path not in self.written:
                path.unlink()
                removed += 1
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        return removed


def _load_share_docs(share_dir: Path | None) -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    if share_dir is not None and share_dir.is_dir():
        for path in sorted(share_dir.glob("*.json")):
            docs[path.stem] = json.loads(path.read_text(encoding="utf-8"))
    return docs


def build_site_from_posts(
    posts_dir: Path,
    out_dir: Path,
    *,
    now: datetime | None = None,
    config: SiteConfig | None = None,
    share_dir: Path | None = None,
) -> dict[str, Any]:
    """Render every page of the posts in ``posts_dir`` into ``out_dir/www``.

    Settings come from ``config``, else ``site.json`` next to ``posts_dir``
    or in ``out_dir``, else defaults; ``now`` overrides their time. Share
    documents come from ``share_dir`` (default: ``share/`` next to
    ``posts_dir``); a post whose share link has no document gets one made
    from the post itself. Returns the manifest (also written to
    ``out_dir/manifest.json``, keeping keys an earlier build put there) plus
    this build's ``build_seconds``, ``changed_files`` and ``removed_files``.
    """
    started = time.perf_counter()
    posts_dir, out_dir = Path(posts_dir), Path(out_dir)
    if config is None:
        for candidate in (posts_dir.parent / SITE_FILE, out_dir / SITE_FILE):
            if candidate.is_file():
                config = SiteConfig.load(candidate)
                break
        else:
            config = SiteConfig()
    if now is not None:
        config.now = now
    if share_dir is None:
        share_dir = posts_dir.parent / SHARE_DIR
    site = Site(load_posts(posts_dir), config)
    docs = _load_share_docs(share_dir)

    main = TreeWriter(out_dir / WWW_DIR / MAIN_HOST, config.now.timestamp())
    share = TreeWriter(out_dir / WWW_DIR / SHARE_HOST, config.now.timestamp())
    pages: list[str] = []

    def page(path: str, text: str) -> None:
        main.write(unquote(path) + ("index.html" if path.endswith("/") else ""), text.encode())
        pages.append(f"https://{MAIN_HOST}{path}")

    seen_paths: set[str] = set()
    for post in site.posts:
        path = site.path(post)
        if path in seen_paths:
            logger.warning("two posts at %s; the later one (%s) wins", path, post.file_name)
        seen_paths.add(path)
        page(path, render.render_post_page(post, site))
    page("/", render.render_home(site))
    for slug in site.categories():
        page(category_page_path(slug), render.render_category_page(site, slug))
        page(folder_page_path(slug), render.render_folder_page(site, slug))
    page("/feed.xml", render.render_feed(site))
    main.write("404.html", render.render_404(site).encode())
    main.write("assets/css/style.css", STYLE_CSS.encode())
    main.write("assets/js/scale.fix.js", SCALE_FIX_JS.encode())

    share.write("html_News/NewsShare.html", render.render_share_page().encode())
    share.write(f"{SHARE_JSON_DIR}/{SHARE_NOT_FOUND_FILE}", _json_bytes(NOT_FOUND_DOC))
    codes: list[str] = []
    for post in site.posts:
        code = share_code(post.body)
        if code is None or code in codes:
            continue
        codes.append(code)
        doc = docs.get(code) or doc_from_post(post, code)
        share.write(f"{SHARE_JSON_DIR}/{code}.json", _json_bytes(doc))
        pages.append(f"https://{SHARE_HOST}/{SHARE_JSON_DIR}?id={code}")
    removed = main.prune() + share.prune()

    (out_dir / SITE_FILE).write_text(
        json.dumps(config.to_json(), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    manifest_path = out_dir / MANIFEST_FILE
    manifest: dict[str, Any] = {}
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    counts = dict(manifest.get("counts", {}))
    counts.update(
        {
            "posts": len(site.posts),
            "pages": len(pages),
            "share_docs": len(codes),
            "categories": len(site.categories()),
            "tags": len(site.tags()),
        }
    )
    manifest.update({"now": config.now.isoformat(), "counts": counts, "pages": pages})
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    logger.info(
        "built %d posts into %s (%d files changed, %d removed)",
        len(site.posts),
        out_dir,
        main.changed + share.changed,
        removed,
    )
    return {
        **manifest,
        "build_seconds": round(time.perf_counter() - started, 3),
        "changed_files": main.changed + share.changed,
        "removed_files": removed,
    }


EXPECTED_FILE = "expected.jsonl"
POSTS_DIR = "posts"
#: the hand-written expected documents of the real sample posts (by the extraction engineer)
SAMPLES_EXPECTED = "expected.jsonl"
#: field order of an expected article
EXPECTED_FIELDS = (*EXTRACTED_FIELDS, "reachable", "storable", "faults", "near_duplicate_of")


def _sample_expected(samples_dir: Path) -> list[dict[str, Any]] | None:
    path = samples_dir / SAMPLES_EXPECTED
    if not path.is_file():
        return None
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def build_site(
    out_dir: Path,
    articles: int = 300,
    seed: int = 1,
    now: datetime | None = None,
    *,
    days: float = 3.0,
    faults: float | None = None,
    fault_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Generate ``articles`` articles, add the real sample posts, and build the site.

    Writes ``out_dir/posts`` (cleared first), ``share/``, ``site.json``,
    ``www/``, ``expected.jsonl`` and ``manifest.json``. The real samples'
    expected documents come from ``newscrawl/replica/posts/expected.jsonl``
    when it exists; otherwise they are left out of ``expected.jsonl`` and
    the manifest says ``"samples_expected": false``. Deterministic for a
    given ``seed`` and ``now`` (default :data:`DEFAULT_NOW`).

    ``faults``: plan faults for at least that fraction of the site's URLs
    (:func:`newscrawl.replica.faults.plan_faults`, with ``fault_options`` as
    keyword arguments); the manifest's ``faults`` gives the plan's counts.
    Without it, an earlier plan is removed and every article's ``storable``
    is its ``reachable``.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    now = now or DEFAULT_NOW
    generated = generate(articles, seed, now, days)
    posts_dir = out_dir / POSTS_DIR
    share_dir = out_dir / SHARE_DIR
    for folder in (posts_dir, share_dir):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    samples_dir = sample_posts_dir()
    samples = load_posts(samples_dir)
    for post in samples:
        shutil.copyfile(samples_dir / post.file_name, posts_dir / post.file_name)
    for post in generated.posts:
        write_post(post, posts_dir)
    for code, doc in generated.share_docs.items():
        (share_dir / f"{code}.json").write_bytes(_json_bytes(doc))

    manifest_path = out_dir / MANIFEST_FILE
    if manifest_path.exists():
        manifest_path.unlink()
    stats = build_site_from_posts(posts_dir, out_dir, config=generated.config, share_dir=share_dir)

    site = Site(load_posts(posts_dir), generated.config)
    reached = reachable_posts(site)
    reached_files = {p.file_name for p in site.posts if id(p) in reached}
    records: list[dict[str, Any]] = []
    for record in generated.expected:
        files = generated.article_posts[record["key"]]
        record["reachable"] = record["storable"] = any(f in reached_files for f in files)
        record["faults"] = []
        records.append({k: record.get(k) for k in EXPECTED_FIELDS})
    sample_records = _sample_expected(samples_dir)
    if sample_records is not None:
        sample_urls = {
            site.url(p): p.file_name
            for p in site.posts
            if p.file_name in {s.file_name for s in samples}
        }
        for record in sample_records:
            record.setdefault("near_duplicate_of", None)
            record["reachable"] = sample_urls.get(record.get("url", "")) in reached_files
            record["storable"] = record["reachable"]
            record["faults"] = []
            records.append(
                {k: record.get(k) for k in EXPECTED_FIELDS}
                | {k: v for k, v in record.items() if k not in EXPECTED_FIELDS}
            )
    records.sort(key=lambda r: (r["published_at"] or "", r["key"]))
    (out_dir / EXPECTED_FILE).write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )

    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    counts = manifest["counts"]
    counts.update(
        {
            "articles": len(records),
            "generated_articles": len(generated.expected),
            "sample_posts": len(samples),
            "unreachable_articles": sum(1 for r in records if not r["reachable"]),
            "near_duplicates": sum(1 for r in records if r["near_duplicate_of"]),
        }
    )
    manifest.update(
        {
            "seed": seed,
            "articles_requested": articles,
            "samples_expected": sample_records is not None,
            "features": dict(sorted(generated.features.items())),
            "article_posts": generated.article_posts,
        }
    )
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    plan_path = out_dir / FAULTS_FILE
    if plan_path.exists():
        plan_path.unlink()
    if faults is not None:
        plan = plan_faults(out_dir, seed=seed, rate=faults, **(fault_options or {}))
        manifest["faults"] = plan.counts
        manifest_path.write_text(
            json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8"
        )
    logger.info("built replica site %s: %s", out_dir, counts)
    return {
        **manifest,
        "build_seconds": round(time.perf_counter() - started, 3),
        **{k: stats[k] for k in ("changed_files", "removed_files")},
    }
