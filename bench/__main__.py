"""``make bench`` (``python -m bench``): how close newscrawl gets to its limit.

1. Builds a replica (``--articles``, default 3,000) and serves it with nginx,
   after checking that nginx answers what the Python replica answers.
2. Crawls it ``--runs`` times each (default 3, median reported), each crawl
   in its own process: the bare spider (the limit), the product with storage
   on (a fresh database on an embedded SecantusDB started before the clock),
   the product with storage off, and storage off beside the database work of
   a storage-on crawl, replayed (``bench/dbload.py``: the ceiling the
   database's own CPU puts on the storage on/off ratio on this machine).
3. Per-article CPU of extraction, cleaning and dedup over the saved pages,
   with a cProfile.
4. The MongoDB write path against one ``insert_one`` per item.
5. Peak memory; the dedup state per article from ``bench/neardup.py``'s
   results, when present.
6. One distributed worker and two (issue 7), when the distributed mode exists.

Results: ``bench/results.json`` and ``bench/results.md`` (the table also
printed); logs, the nginx.conf, profiles and crawl logs under ``bench/out/``.
The crawls use http URLs: nginx does not tunnel ``CONNECT`` (see
:mod:`bench.handlers`).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cpu, crawls, dbload, nginx, parity, report, workers, writes

logger = logging.getLogger("bench")

BENCH_DIR = Path(__file__).resolve().parent


def revision() -> str | None:
    """The commit measured: ``git rev-parse`` of the checkout, or the ``REV`` file
    of an exported tree (``git archive``), else None."""
    repo = BENCH_DIR.parent
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        done = None
    if done is not None and done.returncode == 0 and done.stdout.strip():
        return done.stdout.strip()
    rev_file = repo / "REV"
    return rev_file.read_text().strip() if rev_file.is_file() else None


def build_replica(out: Path, articles: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """The replica site for the bench (built once per size and seed, then reused)."""
    from newscrawl.replica.build import build_site

    site = out / f"site-{articles}-{seed}"
    manifest = site / "manifest.json"
    if not manifest.exists():
        logger.info("building a replica of %d articles in %s", articles, site)
        build_site(site, articles=articles, seed=seed)
    data = json.loads(manifest.read_text(encoding="utf-8"))
    counts = data.get("counts", {})
    return site, {
        "dir": str(site),
        "articles": counts.get("articles"),
        "pages": counts.get("pages"),
        "seed": seed,
    }


def check_parity(site: Path, proxy: nginx.NginxProxy) -> dict[str, Any]:
    """nginx against the Python replica on a sample of URLs (raises on a mismatch)."""
    from newscrawl.replica.process import ReplicaProcess

    urls = parity.sample_urls(site)
    with ReplicaProcess.start(site) as reference:
        return parity.check_parity(reference.port, proxy.port, urls)


def neardup_numbers(out: Path) -> dict[str, Any] | None:
    """What ``python -m bench.neardup`` (the dedup engineer's bench) wrote to
    ``neardup.json``, in ``out`` or ``bench/out/``, if it ran."""
    for path in (out / "neardup.json", BENCH_DIR / "out" / "neardup.json"):
        if not path.exists():
            continue
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            logger.warning("ignoring unreadable %s: %s", path, exc)
            continue
        return data
    return None


def dedup_state(numbers: dict[str, Any] | None) -> str | None:
    """The near-duplicate index's size per article, from bench/neardup.py's numbers.

    >>> dedup_state({"scale": [{"size": 1000000, "data_bytes_per_article": 925.4,
    ...     "index_bytes_per_article": 57.9, "process_bytes_per_article": 169.6}]})
    '983 B/article in MongoDB (925 data + 58 indexes), 170 B in each crawler, at 1,000,000 articles'
    >>> dedup_state({"scale": [{"size": 100000, "measured": True,
    ...     "data_bytes_per_article": 1119.7, "index_bytes_per_article": 1351.7}]})
    '2471 B/article in MongoDB (1120 data + 1352 indexes), at 100,000 articles'
    >>> dedup_state(None) is None
    True
    """
    if not numbers:
        return None
    # rows of older reports may be extrapolated ("measured": false)
    measured = [row for row in numbers.get("scale", []) if row.get("measured", True)]
    if not measured:
        return "see bench/out/neardup.json"
    row = measured[-1]
    data, index = row.get("data_bytes_per_article"), row.get("index_bytes_per_article")
    if data is None or index is None:
        return "see bench/out/neardup.json"
    text = f"{data + index:.0f} B/article in MongoDB ({data:.0f} data + {index:.0f} indexes)"
    process = row.get("process_bytes_per_article")
    if process is not None:
        text += f", {process:.0f} B in each crawler"
    return f"{text}, at {row.get('size', 0):,} articles"


def run_crawls(
    args: argparse.Namespace, proxy: nginx.NginxProxy, out: Path
) -> tuple[list[crawls.CrawlRun], dict[str, Any]]:
    """Every timed crawl, kinds interleaved (the order rotates each round so
    that slow moments of a shared machine do not fall on one kind)."""
    from newscrawl.storage.embedded import EmbeddedMongo

    mongo_dir = out / "mongo"
    shutil.rmtree(mongo_dir, ignore_errors=True)
    runs: list[crawls.CrawlRun] = []
    kinds = [k for k in crawls.KINDS if k in args.kinds]
    extra: dict[str, Any] = {}
    with EmbeddedMongo(mongo_dir / "data") as db:
        assert db.uri is not None and db.pid is not None
        uri, db_pids = db.uri, [db.pid]
        nginx_pids = [proxy.pid or 0, *nginx.child_pids(proxy.pid or 0)]

        def crawl(kind: str, run: int, **kw: Any) -> crawls.CrawlRun:
            settings = {
                "MONGO_URI": uri,
                "MONGO_DATABASE": f"bench_{kind}_{run}",
                "NEWSCRAWL_DATA_DIR": str((out / "data").absolute()),
                **dict(args.set),
            }
            return crawls.run_crawl(
                kind,
                run,
                proxy_url=proxy.proxy_url,
                workdir=out / "crawls",
                settings=settings,
                watch_db=db_pids,
                watch_nginx=nginx_pids,
                **kw,
            )

        if args.crawls and crawls.DB_LOAD in kinds:
            extra["dbload"] = record_dbload(crawl, out / "crawls")
        for run in range(args.runs if args.crawls else 0):
            order = kinds[run % len(kinds) :] + kinds[: run % len(kinds)]
            for kind in order:
                if kind == crawls.DB_LOAD:
                    info = extra["dbload"]
                    beside = dbload.replay_command(
                        Path(info["log"]), uri, f"bench_replay_{run}", info["scale"]
                    )
                    runs.append(crawl(kind, run, beside=beside))
                else:
                    runs.append(crawl(kind, run))
        if args.writes:
            pages = cpu.saved_pages(Path(args.site_dir))
            extra["writes"] = writes.measure_writes(db.uri, cpu.article_documents(pages))
        if args.workers:
            extra["workers"] = workers.measure_workers(
                proxy.proxy_url,
                out / "workers",
                {"MONGO_URI": db.uri, "NEWSCRAWL_DATA_DIR": str((out / "data").absolute())},
            )
    return runs, extra


def record_dbload(crawl: Callable[..., crawls.CrawlRun], workdir: Path) -> dict[str, Any]:
    """Two untimed crawls before the rounds: storage on, its database commands
    recorded; storage off, for its length. What was recorded, and the scale
    of the replay's timeline.

    The replay plays the recording on the storage-off crawl's timeline: the
    database does the work of a storage-on crawl at the pace the storage-off
    crawl runs (bench/dbload.py)."""
    log = workdir.absolute() / "dbload.bson"
    recorded = crawl(crawls.PRODUCT, -1, record=log)
    calibration = crawl(crawls.NO_STORE, -1)
    scale = round(calibration.elapsed / recorded.elapsed, 3) if recorded.elapsed else 1.0
    commands = sum(1 for _ in dbload.load(log))
    info = {
        "log": str(log),
        "commands": commands,
        "recorded_elapsed": recorded.elapsed,
        "recorded_db_cpu_seconds": recorded.db_cpu_seconds,
        "storage_off_elapsed": calibration.elapsed,
        "scale": scale,
    }
    logger.info("dbload: %d commands recorded, replayed at x%.3f", commands, scale)
    return info


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"-s needs NAME=VALUE, got {text!r}")
    return name, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--articles", type=int, default=3000, help="replica size (default 3000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="crawls of each kind (median kept)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="work folder")
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "results.json")
    parser.add_argument("--table", type=Path, default=BENCH_DIR / "results.md")
    parser.add_argument("--kinds", nargs="+", default=list(crawls.KINDS), choices=crawls.KINDS)
    parser.add_argument(
        "-s",
        dest="set",
        action="append",
        default=[],
        type=_setting,
        metavar="NAME=VALUE",
        help="a Scrapy setting for every crawl",
    )
    parser.add_argument("--no-crawls", dest="crawls", action="store_false")
    parser.add_argument("--no-cpu", dest="cpu", action="store_false")
    parser.add_argument("--no-writes", dest="writes", action="store_false")
    parser.add_argument("--no-workers", dest="workers", action="store_false")
    parser.add_argument("--nginx-workers", type=int, default=1, help="nginx worker processes")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out: Path = args.out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: dict[str, Any] = {
        "started_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "revision": revision(),
        "machine": report.machine(),
        "settings": {"runs": args.runs, "overrides": dict(args.set)},
    }
    site, results["site"] = build_replica(out, args.articles, args.seed)
    args.site_dir = site
    with nginx.NginxProxy(site, out / "nginx", workers=args.nginx_workers) as proxy:
        logger.info("nginx config: %s", proxy.config_path)
        try:
            results["parity"] = check_parity(site, proxy)
        except parity.ParityError as exc:
            logger.error("%s", exc)
            print(f"bench: nginx does not serve what the replica serves:\n{exc}", file=sys.stderr)
            return 1
        results["nginx_conf"] = str(proxy.config_path)
        if args.crawls or args.writes or args.workers:
            runs, extra = run_crawls(args, proxy, out)
            results["crawls"] = crawls.summarize_runs(runs) if runs else None
            results.update(extra)
    if args.cpu:
        results["cpu"] = cpu.measure_cpu(site, out)
    neardup = neardup_numbers(out)
    results["neardup"] = neardup
    crawl_results = results.get("crawls") or {}
    results["memory"] = {
        "product_peak_rss_mb": (crawl_results.get("product") or {})
        .get("median", {})
        .get("max_rss_mb"),
        "bare_peak_rss_mb": (crawl_results.get("bare") or {}).get("median", {}).get("max_rss_mb"),
        "dedup_state": dedup_state(neardup),
    }
    results["machine_end"] = {"load_average": report.machine()["load_average"]}
    results["seconds"] = round(time.monotonic() - started, 1)
    table = report.markdown(results)
    args.results.write_text(json.dumps(results, ensure_ascii=False, indent=1, default=str) + "\n")
    args.table.write_text(table, encoding="utf-8")
    print(table)
    print(f"results: {args.results} and {args.table}; work files in {out}")
    failed = [
        run["kind"]
        for kind in crawls.KINDS
        for run in (crawl_results.get(kind) or {}).get("runs", [])
        if run["exit_code"] != 0 or run["finish_reason"] != "finished"
    ]
    if failed:
        print(f"bench: crawls that did not finish cleanly: {failed}", file=sys.stderr)
        return 1
    if args.strict:
        missed = (crawl_results.get("product_over_limit") or 0) < report.PRODUCT_OVER_LIMIT or (
            crawl_results.get("storage_on_over_off") or 0
        ) < report.STORAGE_ON_OVER_OFF
        return 1 if missed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
