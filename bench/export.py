"""``python -m bench.export``: does ``newscrawl export`` run in flat memory?

Seeds a fresh database (an embedded SecantusDB in ``bench/out/export/``, or
``--mongo-uri``) with ``--articles`` stored articles (default 100,000; valid
against the validator; written in batches of 100 that share one
``updated_at``, as the store writes them), then runs the real command,
``python -m newscrawl export``, each time in its own process, and reads that
process's peak RSS (``VmHWM``, polled from ``/proc`` while it runs):

- nothing to export (a watermark past the end): the baseline of the process;
- the last tenth of the articles (from a watermark in the middle of a tie);
- every article, as JSON lines and as CSV.

Flat memory means the peak RSS of the full export is the baseline's plus a
constant (the cursor's batch), not plus something proportional to the
articles. Results: ``bench/out/export/results.json`` and a table on stdout.
Not part of ``make test`` (a smoke test of export correctness is:
``tests/test_storage_export.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from newscrawl.storage.documents import merge, to_document
from newscrawl.storage.embedded import EmbeddedMongo
from newscrawl.storage.export import Watermark
from newscrawl.storage.migrations import ensure_collections

logger = logging.getLogger("bench.export")

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "out" / "export"
DATABASE = "bench_export"
BATCH = 100
T0 = datetime(2024, 1, 1, tzinfo=UTC)
PARAGRAPH = "财经新闻正文，记者从有关部门获悉，本周市场交易活跃，成交金额较上周明显放大。"


def item(n: int, body_chars: int) -> dict[str, Any]:
    """An article item as the spider yields it, number ``n``."""
    code = f"NW{202401010000000000 + n}"
    url = f"https://finews.withounder.com/dazhongribao/2024/01/01/{code}.html"
    body = (PARAGRAPH * (body_chars // len(PARAGRAPH) + 1))[:body_chars]
    fields = {
        "key": f"finews:{code}",
        "site": "finews",
        "kind": "news",
        "info_code": code,
        "url": url,
        "urls": [url],
        "title": f"第{n}篇：市场交易活跃",
        "published_at": T0 + timedelta(minutes=n),
        "published_at_source": "page",
        "derived_fields": [],
        "categories": ["dazhongribao"],
        "tags": ["大众日报新闻"],
        "source": "大众日报",
        "authors": ["张三"],
        "correspondents": ["李四"],
        "body": body,
        "summary": body[:60],
        "images": [{"src": f"https://img.example/{n}.jpg", "caption": "图注"}],
        "share_url": None,
        "origin_url": None,
        "outlinks": [],
    }
    return fields


def article(n: int, body_chars: int) -> dict[str, Any]:
    """A stored article (as the store would write it), number ``n``."""
    # one updated_at per batch of BATCH, like the store's bulk writes
    written = T0 + timedelta(seconds=n // BATCH)
    doc, _, _ = merge(None, to_document(item(n, body_chars)), "bench-run", written)
    return doc


def seed(uri: str, articles: int, body_chars: int, reseed: bool = False) -> dict[str, Any]:
    """The articles, written once: a database left by an earlier run with the
    same count and body size is reused (``--reseed`` to write it again)."""
    client: Any = MongoClient(uri, tz_aware=True)
    try:
        db = client[DATABASE]
        marker = db.bench.find_one({"_id": "seeded"}) or {}
        wanted = {"articles": articles, "body_chars": body_chars}
        if not reseed and all(marker.get(k) == v for k, v in wanted.items()):
            if db.articles.estimated_document_count() == articles:
                logger.info("reusing the %d articles seeded earlier", articles)
                return {**marker["result"], "reused": True}
        client.drop_database(DATABASE)
        ensure_collections(db)
        started = time.perf_counter()
        chunk: list[dict[str, Any]] = []
        for n in range(articles):
            chunk.append(article(n, body_chars))
            if len(chunk) == 5000:
                db.articles.insert_many(chunk, ordered=False)
                chunk = []
                logger.info("seeded %d articles", n + 1)
        if chunk:
            db.articles.insert_many(chunk, ordered=False)
        seconds = time.perf_counter() - started
        stats = db.command("collStats", "articles")
        result = {
            "articles": db.articles.count_documents({}),
            "seconds": round(seconds, 1),
            "docs_per_second": round(articles / seconds, 1),
            "data_mb": round(stats.get("size", 0) / 1e6, 1),
        }
        db.bench.replace_one({"_id": "seeded"}, {**wanted, "result": result}, upsert=True)
        return result
    finally:
        client.close()


@dataclass
class Run:
    """One export command in its own process."""

    name: str
    since: str
    format: str
    exported: int
    seconds: float
    docs_per_second: float
    peak_rss_mb: float
    output_mb: float


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident set so far (``VmHWM``), in kB; 0 once it
    is gone. Read from /proc, because ``ru_maxrss`` of a child on Linux also
    counts the parent's memory it was forked from."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def run_export(uri: str, name: str, since: str, fmt: str, out: Path) -> Run:
    target = out / f"{name}.{fmt}"
    cmd = [
        sys.executable, "-m", "newscrawl", "export", "--mongo-uri", uri, "--database", DATABASE,
        "--since", since, "--format", fmt, "--out", str(target), "--settle", "0",
    ]  # fmt: skip
    stdout_file, stderr_file = out / "export.stdout", out / "export.stderr"
    started = time.perf_counter()
    with open(stdout_file, "wb") as stdout, open(stderr_file, "wb") as stderr:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=stdout, stderr=stderr,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        peak = 0
        while proc.poll() is None:
            peak = max(peak, peak_rss_kb(proc.pid))
            time.sleep(0.02)
    seconds = time.perf_counter() - started
    output, errors = stdout_file.read_text(), stderr_file.read_text()
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: export failed ({proc.returncode}): {errors[-2000:]}")
    exported = int(errors.split("newscrawl export: ", 1)[1].split(" ", 1)[0])
    logger.info("%s: %d articles in %.1fs, next %s", name, exported, seconds, output.strip())
    return Run(
        name=name,
        since=since,
        format=fmt,
        exported=exported,
        seconds=round(seconds, 2),
        docs_per_second=round(exported / seconds, 1),
        peak_rss_mb=round(peak / 1024, 1),
        output_mb=round(target.stat().st_size / 1e6, 1),
    )


def table(seeded: dict[str, Any], runs: list[Run]) -> str:
    lines = [
        f"export of {seeded['articles']} articles ({seeded['data_mb']} MB of documents; "
        f"seeded with insert_many at {seeded['docs_per_second']} docs/s)",
        "",
        "| run | format | exported | seconds | docs/s | peak RSS MB | output MB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        lines.append(
            f"| {run.name} | {run.format} | {run.exported} | {run.seconds} | "
            f"{run.docs_per_second} | {run.peak_rss_mb} | {run.output_mb} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__)
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--body-chars", type=int, default=1500, help="characters per body")
    parser.add_argument("--mongo-uri", help="a server to use (default: an embedded one)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--reseed", action="store_true", help="write the articles again")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    server = None
    uri = args.mongo_uri
    if uri is None:
        server = EmbeddedMongo(args.out / "mongo")
        uri = server.start()
    try:
        seeded = seed(uri, args.articles, args.body_chars, args.reseed)
        logger.info("seeded %s", seeded)
        last = article(args.articles - 1, 10)
        tenth = article(args.articles - args.articles // 10, 10)
        past_end = str(Watermark(last["updated_at"] + timedelta(days=1)))
        # the watermark of an article in the middle of a batch: ties on both sides
        middle = str(Watermark(tenth["updated_at"], tenth["_id"]))
        runs = [
            run_export(uri, "nothing (baseline)", past_end, "jsonl", args.out),
            run_export(uri, "last tenth", middle, "jsonl", args.out),
            run_export(uri, "all", "", "jsonl", args.out),
            run_export(uri, "all", "", "csv", args.out),
        ]
    finally:
        if server is not None:
            server.stop()
    text = table(seeded, runs)
    baseline, full = runs[0].peak_rss_mb, runs[2].peak_rss_mb
    verdict = (
        f"peak RSS: {baseline} MB exporting nothing, {runs[1].peak_rss_mb} MB for "
        f"{runs[1].exported}, {full} MB for {runs[2].exported} articles "
        f"(+{round(full - baseline, 1)} MB over the baseline)"
    )
    print(text + "\n\n" + verdict)
    results = {
        "at": datetime.now(tz=UTC).isoformat(),
        "seeded": seeded,
        "runs": [asdict(run) for run in runs],
        "verdict": verdict,
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    for run in runs:
        (args.out / f"{run.name}.{run.format}").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
