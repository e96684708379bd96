"""Run N distributed workers against one replica: the benchmark hook.

::

    from newscrawl.distributed.workers import run_workers

    with ReplicaProcess.start(site) as replica:
        result = run_workers(2, replica.proxy_url, workdir=tmp, settings={"MONGO_URI": uri})
    print(result.pages_per_second)

Each worker is ``python -m newscrawl crawl finews --distributed`` in its own
process (its own reactor and GIL), started together, sharing one Redis (a
throw-away ``redis-server`` unless ``redis_url`` is given) and one MongoDB
(``MONGO_URI`` in ``settings``, else the embedded server under ``workdir``,
shared by the workers). ``workers=1, distributed=False`` runs a plain crawl,
for a baseline without Redis.

Also a command: ``python -m newscrawl.distributed bench --workers 2 --site DIR``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from newscrawl.distributed.redis_server import RedisServer


@dataclass
class WorkersResult:
    """What N workers did together."""

    workers: int
    #: pages downloaded (``downloader/response_count``), summed over workers
    pages: int
    #: first worker's crawl start to last worker's crawl end (from their stats)
    crawl_seconds: float
    #: launch of the first process to exit of the last (includes interpreter start)
    wall_seconds: float
    exit_codes: list[int]
    #: each worker's stats, as written by ``--stats-out``
    stats: list[dict[str, Any]] = field(default_factory=list)
    #: each worker's output (stdout + stderr)
    outputs: list[str] = field(default_factory=list)

    @property
    def pages_per_second(self) -> float:
        """Pages per second of crawl time: Scrapy's ``start_time`` to
        ``finish_time``, so interpreter start-up and the work components still
        do after the crawl closed (e.g. the near-duplicate index catching up)
        are left out."""
        return self.pages / self.crawl_seconds if self.crawl_seconds > 0 else 0.0

    @property
    def pages_per_second_wall(self) -> float:
        """Pages per second of wall time, first launch to last exit (all included)."""
        return self.pages / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def items(self) -> int:
        return sum(int(s.get("item_scraped_count", 0)) for s in self.stats)

    def to_json(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "pages": self.pages,
            "items": self.items,
            "crawl_seconds": round(self.crawl_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "pages_per_second": round(self.pages_per_second, 1),
            "pages_per_second_wall": round(self.pages_per_second_wall, 1),
            "exit_codes": self.exit_codes,
        }


def worker_command(
    stats_out: Path,
    settings: dict[str, Any],
    distributed: bool,
    spider_args: dict[str, str] | None = None,
) -> list[str]:
    """The command line of one worker.

    >>> worker_command(Path("s.json"), {"LOG_LEVEL": "INFO"}, True, {"start_url": "u"})[6:]
    ['s.json', '--distributed', '-s', 'LOG_LEVEL=INFO', '-a', 'start_url=u']
    """
    cmd = [sys.executable, "-m", "newscrawl", "crawl", "finews", "--stats-out", str(stats_out)]
    if distributed:
        cmd.append("--distributed")
    for name, value in settings.items():
        cmd += ["-s", f"{name}={value}"]
    for name, value in (spider_args or {}).items():
        cmd += ["-a", f"{name}={value}"]
    return cmd


def start_worker(
    index: int,
    proxy_url: str,
    workdir: Path,
    settings: dict[str, Any],
    *,
    distributed: bool = True,
    spider_args: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[str], Path]:
    """Launch worker ``index`` (its files ``worker-<index>.*`` in ``workdir``);
    returns the process and its stats file."""
    stats_out = workdir / f"worker-{index}.stats.json"
    stats_out.unlink(missing_ok=True)
    env = {**os.environ, "http_proxy": proxy_url, "https_proxy": proxy_url}
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    log = (workdir / f"worker-{index}.log").open("w")
    proc = subprocess.Popen(
        worker_command(stats_out, settings, distributed, spider_args),
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log.close()  # the child holds its own descriptor
    return proc, stats_out


def _stats_time(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if isinstance(value, datetime) else None


def crawl_seconds(stats: list[dict[str, Any]]) -> float:
    """From the earliest ``start_time`` to the latest ``finish_time``.

    >>> crawl_seconds([{"start_time": "2026-01-01 00:00:00+00:00",
    ...                 "finish_time": "2026-01-01 00:00:09+00:00"},
    ...                {"start_time": "2026-01-01 00:00:01+00:00",
    ...                 "finish_time": "2026-01-01 00:00:10.5+00:00"}])
    10.5
    """
    starts = [t for s in stats if (t := _stats_time(s.get("start_time"))) is not None]
    ends = [t for s in stats if (t := _stats_time(s.get("finish_time"))) is not None]
    if not starts or not ends:
        return 0.0
    return (max(ends) - min(starts)).total_seconds()


def run_workers(
    workers: int,
    proxy_url: str,
    *,
    workdir: Path,
    settings: dict[str, Any] | None = None,
    redis_url: str | None = None,
    distributed: bool = True,
    spider_args: dict[str, str] | None = None,
    timeout: float = 900.0,
) -> WorkersResult:
    """Crawl the replica behind ``proxy_url`` with ``workers`` processes at
    once and wait for all of them (killing them after ``timeout`` seconds).
    ``settings`` are ``-s`` settings of every worker (text values),
    ``spider_args`` their ``-a`` arguments (e.g. ``start_url``)."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if not distributed and workers != 1:
        raise ValueError("several workers need distributed mode")
    workdir.mkdir(parents=True, exist_ok=True)
    base: dict[str, Any] = {
        "NEWSCRAWL_ALLOWED_ADDRESSES": "127.0.0.1",  # the replica proxy is on loopback
        "NEWSCRAWL_DATA_DIR": str(workdir / ".newscrawl"),
        "LOG_LEVEL": "INFO",
        **(settings or {}),
    }
    server = None
    if distributed and redis_url is None and "REDIS_URL" not in base:
        server = RedisServer.start(workdir / "redis")
        redis_url = server.url
    if redis_url is not None:
        base["REDIS_URL"] = redis_url
    try:
        started = time.perf_counter()
        procs = [
            start_worker(
                i, proxy_url, workdir, base, distributed=distributed, spider_args=spider_args
            )
            for i in range(workers)
        ]
        deadline = time.monotonic() + timeout
        codes = []
        for proc, _ in procs:
            try:
                codes.append(proc.wait(max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        wall = time.perf_counter() - started
    finally:
        if server is not None:
            server.stop()
    stats = [json.loads(path.read_text()) if path.exists() else {} for _, path in procs]
    outputs = [(workdir / f"worker-{i}.log").read_text(errors="replace") for i in range(workers)]
    return WorkersResult(
        workers=workers,
        pages=sum(int(s.get("downloader/response_count", 0)) for s in stats),
        crawl_seconds=crawl_seconds(stats),
        wall_seconds=wall,
        exit_codes=codes,
        stats=stats,
        outputs=outputs,
    )
