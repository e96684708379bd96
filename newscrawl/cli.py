"""The ``newscrawl`` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from newscrawl.summary import format_summary, jsonable


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, val = value.partition("=")
        if not sep or not name:
            raise SystemExit(f"newscrawl: {what} needs NAME=VALUE, got {value!r}")
        out[name] = val
    return out


def _crawl(
    spider: str, settings: dict[str, Any], spider_args: dict[str, str], stats_out: str | None
) -> int:
    from newscrawl.runner import run_crawl

    stats = run_crawl(spider, settings, spider_args)
    print(format_summary(stats))
    if stats_out:
        Path(stats_out).write_text(
            json.dumps(jsonable(stats), ensure_ascii=False, indent=1, default=str)
        )
    ok = (
        stats.get("finish_reason") == "finished"
        and not stats.get("newscrawl/store/write_errors")
        and not stats.get("log_count/ERROR")
    )
    return 0 if ok else 1


def _config_problems(spider: str, settings: dict[str, Any]) -> list[str]:
    """An unknown spider, settings of the wrong type: each in one line."""
    from newscrawl.runner import setting_problems, spider_problem

    problem = spider_problem(spider)
    return ([problem] if problem else []) + setting_problems(settings)


def cmd_crawl(args: argparse.Namespace) -> int:
    settings: dict[str, Any] = dict(_pairs(args.set, "-s"))
    if problems := _config_problems(args.spider, settings):
        for line in problems:
            print(f"newscrawl crawl: {line}", file=sys.stderr)
        return 2
    if args.mongo_uri:
        settings["MONGO_URI"] = args.mongo_uri
    if args.loglevel:
        settings["LOG_LEVEL"] = args.loglevel
    if args.distributed or args.redis_url:  # one worker of many: see newscrawl/distributed
        from newscrawl.distributed.connection import redis_problem

        settings["NEWSCRAWL_DISTRIBUTED"] = True
        if args.redis_url:
            settings["REDIS_URL"] = args.redis_url
        if problem := redis_problem(settings):
            print(f"newscrawl: {problem}", file=sys.stderr)
            return 1
    return _crawl(args.spider, settings, _pairs(args.arg, "-a"), args.stats_out)


def cmd_demo(args: argparse.Namespace) -> int:
    from newscrawl.replica.build import build_site
    from newscrawl.replica.process import ReplicaProcess

    data = Path(args.data_dir)
    site = data / "replica" / f"demo-{args.articles}-{args.seed}"
    if not (site / "manifest.json").exists():
        print(f"building a replica of {args.articles} articles in {site} ...", flush=True)
        build_site(site, articles=args.articles, seed=args.seed)
    expected = [
        json.loads(line) for line in (site / "expected.jsonl").read_text().splitlines() if line
    ]
    reachable = sum(1 for doc in expected if doc.get("reachable", True))
    with ReplicaProcess.start(site, access_log=data / "replica-access.jsonl") as replica:
        print(f"replica serving the finews hosts through proxy {replica.proxy_url}", flush=True)
        os.environ["http_proxy"] = os.environ["https_proxy"] = replica.proxy_url
        settings: dict[str, Any] = {
            "LOG_LEVEL": args.loglevel,
            "NEWSCRAWL_DATA_DIR": str(data),
            "NEWSCRAWL_ALLOWED_ADDRESSES": "127.0.0.1",  # the replica proxy is on loopback
        }
        code = _crawl("finews", settings, {}, args.stats_out)
    print(
        f"  replica            {len(expected)} articles, {reachable} reachable from the home page"
    )
    print(f"  stored data        {data / 'mongo'} (embedded SecantusDB); look at it with:")
    print("                     newscrawl articles --limit 3")
    return code


def cmd_articles(args: argparse.Namespace) -> int:
    from newscrawl.runner import project_settings
    from newscrawl.storage.client import open_store

    overrides = {"MONGO_URI": args.mongo_uri} if args.mongo_uri else {}
    if args.database:
        overrides["MONGO_DATABASE"] = args.database
    store = open_store(project_settings(overrides))
    try:
        from newscrawl.storage.export import article_json

        for doc in store.db.articles.find({}, limit=args.limit).sort("published_at", -1):
            print(article_json(doc))
    finally:
        store.close()
    return 0


def _store_settings(args: argparse.Namespace) -> Any:
    from newscrawl.runner import project_settings

    overrides: dict[str, Any] = dict(_pairs(args.set, "-s"))
    if args.mongo_uri:
        overrides["MONGO_URI"] = args.mongo_uri
    if args.database:
        overrides["MONGO_DATABASE"] = args.database
    return project_settings(overrides)


def cmd_export(args: argparse.Namespace) -> int:
    """Articles updated since a watermark, as JSON lines or CSV, and the next watermark."""
    from newscrawl.storage.client import open_store
    from newscrawl.storage.export import Watermark, export_articles

    try:
        since = Watermark.parse(args.since)
    except ValueError as exc:
        raise SystemExit(f"newscrawl export: --since: {exc}") from exc
    store = open_store(_store_settings(args))
    try:
        result = export_articles(store.db, since, args.format, out=args.out, settle=args.settle)
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`): nothing more to say
        return 1
    finally:
        store.close()
    print(
        f"newscrawl export: {result.count} article(s) updated after {since}; "
        f"next time: --since '{result.watermark}'",
        file=sys.stderr,
    )
    if args.out:
        print(result.watermark)  # alone on stdout, for scripts: W=$(newscrawl export ...)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """New and changed articles as JSON lines, as they are stored (a change stream)."""
    from newscrawl.storage.client import open_store
    from newscrawl.storage.export import article_json
    from newscrawl.storage.watch import ResumeTokenLost, follow, load_token, save_token

    token = load_token(args.resume_file) if args.resume_file else None
    store = open_store(_store_settings(args))

    def emit(doc: dict[str, Any]) -> None:
        sys.stdout.write(article_json(doc) + "\n")
        sys.stdout.flush()

    def keep(token: Any) -> None:
        if args.resume_file:
            save_token(args.resume_file, token)

    try:
        follow(store.db, emit, resume_after=token, on_token=keep, max_events=args.max_events)
    except ResumeTokenLost as exc:
        print(f"newscrawl watch: {exc}", file=sys.stderr)
        return 2
    except (BrokenPipeError, KeyboardInterrupt):
        return 0
    finally:
        store.close()
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    """Crawl on a timer, one crawl at a time per site (a lock in MongoDB)."""
    import logging

    from newscrawl.incremental.policy import parse_duration
    from newscrawl.schedule import ScheduleOptions, Scheduler

    logging.basicConfig(
        level=(args.loglevel or "INFO").upper(),
        format="%(asctime)s [%(name)s] %(levelname)s: %(message)s",
    )
    settings: dict[str, Any] = dict(_pairs(args.set, "-s"))
    if args.mongo_uri:
        settings["MONGO_URI"] = args.mongo_uri
    if args.every is None and not args.once:
        raise SystemExit("newscrawl schedule: give --every INTERVAL (or --once)")
    if problems := _config_problems(args.spider, settings):
        raise SystemExit("\n".join(f"newscrawl schedule: {problem}" for problem in problems))
    try:
        options = ScheduleOptions(
            spider=args.spider,
            every=parse_duration(args.every or "1h"),
            settings=settings,
            spider_args=_pairs(args.arg, "-a"),
            lock_ttl=parse_duration(args.lock_ttl),
            max_runs=args.max_runs,
            once=args.once,
            stop_timeout=parse_duration(args.stop_timeout).total_seconds(),
            loglevel=args.loglevel,
        )
    except ValueError as exc:
        raise SystemExit(f"newscrawl schedule: {exc}") from exc
    return Scheduler(options).run()


def cmd_replica(args: argparse.Namespace) -> int:
    from newscrawl.replica.cli import main as replica_main

    return int(replica_main(args.rest) or 0)


def cmd_eval(args: argparse.Namespace) -> int:
    """Build a replica, crawl it into a fresh database and score every field against
    the replica's expected articles; exit 1 when a field is under its target."""
    import time

    from newscrawl.evaluate import expected_articles, format_table, score, site_labels
    from newscrawl.replica.build import build_site
    from newscrawl.replica.process import ReplicaProcess
    from newscrawl.runner import project_settings
    from newscrawl.storage.client import open_store

    data = Path(args.data_dir)
    out = data / "eval"
    site = out / f"site-{args.articles}-{args.seed}"
    print(
        f"building a replica of {args.articles} articles (seed {args.seed}) in {site} ...",
        flush=True,
    )
    manifest = build_site(site, articles=args.articles, seed=args.seed, faults=args.faults)
    lines = (site / "expected.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line]
    expected = expected_articles(records)
    labels = site_labels(site / "posts", records, manifest.get("article_posts", {}))
    settings: dict[str, Any] = {
        "LOG_LEVEL": args.loglevel,
        "NEWSCRAWL_DATA_DIR": str(data),
        "MONGO_DATABASE": args.database,
        "NEWSCRAWL_ALLOWED_ADDRESSES": "127.0.0.1",  # the replica proxy is on loopback
    }
    if args.mongo_uri:
        settings["MONGO_URI"] = args.mongo_uri
    if (site / "faults.json").is_file():  # slow answers must time out, as the plan expects
        plan = json.loads((site / "faults.json").read_text(encoding="utf-8"))
        settings["DOWNLOAD_TIMEOUT"] = float(plan.get("slow_seconds", 3.0)) / 3
    store = open_store(project_settings(settings))  # held open: the crawl joins it
    try:
        store.client.drop_database(args.database)
        started = time.perf_counter()
        with ReplicaProcess.start(site, access_log=out / "replica-access.jsonl") as replica:
            print(
                f"crawling it through the replica proxy {replica.proxy_url} into {store.uri} "
                f"database {args.database} ...",
                flush=True,
            )
            for name in ("no_proxy", "NO_PROXY"):
                os.environ.pop(name, None)
            os.environ["http_proxy"] = os.environ["https_proxy"] = replica.proxy_url
            code = _crawl("finews", settings, {}, str(out / "crawl-stats.json"))
        seconds = time.perf_counter() - started
        docs = list(store.db.articles.find())
    finally:
        store.close()
    result = score(docs, expected, labels)
    print()
    print(format_table(result, variations=not args.no_variations))
    report = {
        "articles": args.articles,
        "seed": args.seed,
        "faults": args.faults,
        "site": str(site),
        "replica_articles": len(records),
        "crawl_exit_code": code,
        "crawl_seconds": round(seconds, 2),
        **result.to_json(),
    }
    (out / "results.json").write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str))
    failures = result.failures()
    print(f"\nresults: {out / 'results.json'}")
    print("every field on target" if not failures else f"UNDER TARGET: {', '.join(failures)}")
    return 1 if failures or code else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newscrawl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    crawl = sub.add_parser("crawl", help="run a spider (e.g. finews) into MongoDB")
    crawl.add_argument("spider")
    crawl.add_argument(
        "-a",
        dest="arg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="spider argument, e.g. -a start_url=https://finews.withounder.com/",
    )
    crawl.add_argument(
        "-s", dest="set", action="append", default=[], metavar="NAME=VALUE", help="Scrapy setting"
    )
    crawl.add_argument(
        "--mongo-uri", help="MongoDB URI (default: $MONGO_URI, else the embedded server)"
    )
    crawl.add_argument("-L", "--loglevel", help="log level (default INFO)")
    crawl.add_argument("--stats-out", help="write the crawl's stats as JSON to this file")
    crawl.add_argument(
        "--distributed",
        action="store_true",
        help="be one of many workers sharing a frontier in Redis (README)",
    )
    crawl.add_argument("--redis-url", help="Redis of --distributed (default: $REDIS_URL)")
    crawl.set_defaults(func=cmd_crawl)

    demo = sub.add_parser(
        "demo", help="build and serve a replica, crawl it into the embedded database"
    )
    demo.add_argument("--articles", type=int, default=300)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--data-dir", default=".newscrawl")
    demo.add_argument("-L", "--loglevel", default="WARNING")
    demo.add_argument("--stats-out")
    demo.set_defaults(func=cmd_demo)

    articles = sub.add_parser("articles", help="print stored articles as JSON lines, newest first")
    articles.add_argument("--limit", type=int, default=10)
    articles.add_argument("--mongo-uri")
    articles.add_argument("--database", help="default: MONGO_DATABASE")
    articles.set_defaults(func=cmd_articles)

    export = sub.add_parser(
        "export",
        help="articles updated since a watermark, as JSON lines or CSV; prints the next watermark",
    )
    export.add_argument(
        "--since",
        default="",
        metavar="TIME[,ID]",
        help="a watermark printed by the last export, or an ISO 8601 time (default: everything)",
    )
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument(
        "--out",
        help="write to this file (atomically) instead of stdout; "
        "the next watermark is then printed on stdout",
    )
    export.add_argument(
        "--settle",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="the watermark stays this far behind now: writes of the last "
        "seconds may not be visible yet (default 60)",
    )
    export.add_argument("--mongo-uri")
    export.add_argument("--database", help="default: MONGO_DATABASE")
    export.add_argument(
        "-s",
        dest="set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="setting, e.g. -s NEWSCRAWL_DATA_DIR=/var/lib/newscrawl",
    )
    export.set_defaults(func=cmd_export)

    watch = sub.add_parser(
        "watch",
        help="print new and changed articles as JSON lines as they are stored (change stream)",
    )
    watch.add_argument(
        "--resume-file",
        metavar="FILE",
        help="keep the resume token here; start after it when it exists",
    )
    watch.add_argument("--max-events", type=int, help="stop after this many articles")
    watch.add_argument("--mongo-uri")
    watch.add_argument("--database", help="default: MONGO_DATABASE")
    watch.add_argument(
        "-s", dest="set", action="append", default=[], metavar="NAME=VALUE", help="setting"
    )
    watch.set_defaults(func=cmd_watch)

    evaluate = sub.add_parser("eval", help="crawl a generated replica and print per-field accuracy")
    evaluate.add_argument("--articles", type=int, default=600)
    evaluate.add_argument("--seed", type=int, default=1)
    evaluate.add_argument("--data-dir", default=".newscrawl")
    evaluate.add_argument(
        "--database",
        default="newscrawl_eval",
        help="database the crawl stores into (dropped first)",
    )
    evaluate.add_argument("--mongo-uri", help="MongoDB URI (default: $MONGO_URI, else embedded)")
    evaluate.add_argument(
        "--faults",
        type=float,
        help="give this fraction of the replica's URLs a fault; lost articles are not expected",
    )
    evaluate.add_argument("--no-variations", action="store_true", help="omit per-variation lines")
    evaluate.add_argument("-L", "--loglevel", default="WARNING")
    evaluate.set_defaults(func=cmd_eval)

    schedule = sub.add_parser("schedule", help="crawl on a timer, one crawl of a site at a time")
    schedule.add_argument("spider")
    schedule.add_argument("--every", help="interval, e.g. 10m, 1h, 90 (seconds)")
    schedule.add_argument(
        "-a", dest="arg", action="append", default=[], metavar="NAME=VALUE", help="spider argument"
    )
    schedule.add_argument(
        "-s",
        dest="set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="Scrapy setting for every crawl",
    )
    schedule.add_argument("--mongo-uri", help="MongoDB URI (crawls and the lock)")
    schedule.add_argument("--lock-ttl", default="60s", help="lease of the site's lock")
    schedule.add_argument("--max-runs", type=int, help="stop after this many crawls")
    schedule.add_argument(
        "--once",
        action="store_true",
        help="one tick (cron, systemd timers): crawl unless locked, then exit",
    )
    schedule.add_argument(
        "--stop-timeout",
        default="120s",
        help="on SIGTERM, how long the running crawl may take to stop",
    )
    schedule.add_argument("-L", "--loglevel", help="log level (default INFO)")
    schedule.set_defaults(func=cmd_schedule)

    replica = sub.add_parser(
        "replica", help="build or serve a replica of the site (see --help)", add_help=False
    )
    replica.add_argument("rest", nargs=argparse.REMAINDER)
    replica.set_defaults(func=cmd_replica)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
