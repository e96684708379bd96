"""Command line of the replica: ``build`` a site, ``serve`` it as a proxy.

``python -m newscrawl.replica build --articles N --seed S --out DIR [--now ISO] [--faults RATE]``
builds a site (with a fault plan for at least RATE of its URLs) and prints a
one-line summary.

``python -m newscrawl.replica serve --site DIR --port 0 [--access-log FILE] [--no-faults]``
prints exactly one line, ``replica proxy listening on 127.0.0.1:PORT``, once
bound, then serves until SIGTERM or SIGINT and exits 0. A site's fault plan
(``faults.json``) is applied unless ``--no-faults``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from datetime import datetime
from pathlib import Path

from newscrawl.replica.server import ReplicaServer

logger = logging.getLogger(__name__)

READY_LINE = "replica proxy listening on 127.0.0.1:{port}"


async def _serve(site: Path, port: int, access_log: Path | None, faults: bool = True) -> None:
    server = ReplicaServer(site, access_log, faults=faults)
    bound = await server.start(port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(READY_LINE.format(port=bound), flush=True)
    try:
        await stop.wait()
    finally:
        await server.close()
        logger.info("replica proxy stopped")


def _parse_now(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"--now needs a UTC offset: {value!r}")
    return parsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m newscrawl.replica")
    parser.add_argument("--log-level", default="WARNING")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve a built site as an HTTP(S) proxy on loopback")
    serve.add_argument("--site", type=Path, required=True)
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--access-log", type=Path, default=None)
    serve.add_argument("--no-faults", action="store_true", help="ignore the site's fault plan")

    build = sub.add_parser("build", help="generate and build a replica site")
    build.add_argument("--articles", type=int, default=300)
    build.add_argument("--seed", type=int, default=1)
    build.add_argument("--out", type=Path, required=True)
    build.add_argument("--now", type=_parse_now, default=None, help="ISO time with offset")
    build.add_argument(
        "--faults",
        type=float,
        default=None,
        metavar="RATE",
        help="plan faults for RATE of the URLs",
    )

    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    if args.command == "serve":
        if not (args.site / "www").is_dir():
            parser.error(f"{args.site} has no www/ folder: build the site first")
        asyncio.run(_serve(args.site, args.port, args.access_log, faults=not args.no_faults))
        return 0
    from newscrawl.replica.build import build_site

    manifest = build_site(
        args.out, articles=args.articles, seed=args.seed, now=args.now, faults=args.faults
    )
    counts = manifest["counts"]
    print(
        f"built {args.out}: {counts['articles']} articles, {counts['posts']} posts, "
        f"{counts['pages']} pages (seed {args.seed}) in {manifest['build_seconds']:.2f}s",
        flush=True,
    )
    if "faults" in manifest:
        plan = manifest["faults"]
        print(
            f"fault plan: {plan['faulty_urls']} of {plan['site_urls']} URLs faulty, "
            f"{plan['fail_for_good']} fail for good, {plan['storable']} articles storable",
            flush=True,
        )
    return 0
