"""``python -m newscrawl.distributed bench``: pages per second of 1, 2, ... workers
crawling one replica, side by side (JSON lines, one per worker count).

::

    python -m newscrawl.distributed bench --site .newscrawl/replica/demo-300-1 --workers 1 2

Each run crawls into a fresh database (dropped after) on ``--mongo-uri`` (else
an embedded server under ``--workdir``), through one replica proxy, with a
throw-away ``redis-server`` unless ``--redis-url`` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any


def bench(args: argparse.Namespace) -> int:
    from pymongo import MongoClient

    from newscrawl.distributed.workers import run_workers
    from newscrawl.replica.process import ReplicaProcess
    from newscrawl.storage.embedded import EmbeddedMongo

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="newscrawl-bench-"))
    embedded = None
    uri = args.mongo_uri
    if uri is None:
        embedded = EmbeddedMongo(workdir / "mongo")
        uri = embedded.start()
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    code = 0
    try:
        with ReplicaProcess.start(Path(args.site)) as replica:
            for workers in args.workers:
                database = f"bench_{workers}_{uuid.uuid4().hex[:8]}"
                settings: dict[str, Any] = {"MONGO_URI": uri, "MONGO_DATABASE": database}
                settings.update(pair.split("=", 1) for pair in args.set)
                try:
                    result = run_workers(
                        workers,
                        replica.proxy_url,
                        workdir=workdir / database,
                        settings=settings,
                        redis_url=args.redis_url,
                        distributed=not (args.plain and workers == 1),
                    )
                    stored = client[database].articles.count_documents({})
                finally:
                    client.drop_database(database)
                code = code or max(result.exit_codes)
                print(json.dumps({**result.to_json(), "articles": stored}), flush=True)
    finally:
        client.close()
        if embedded is not None:
            embedded.stop()
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m newscrawl.distributed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("bench", help="pages per second of N workers on one replica")
    run.add_argument("--site", required=True, help="a built replica (newscrawl replica build)")
    run.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    run.add_argument("--mongo-uri", help="MongoDB (default: an embedded server in --workdir)")
    run.add_argument("--redis-url", help="Redis (default: a throw-away redis-server)")
    run.add_argument("--workdir", help="logs and stats of the workers (default: a temp dir)")
    run.add_argument("--plain", action="store_true", help="1 worker runs without Redis")
    run.add_argument("-s", dest="set", action="append", default=[], metavar="NAME=VALUE",
                     help="Scrapy setting for every worker")  # fmt: skip
    run.set_defaults(func=bench)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
