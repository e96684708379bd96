"""Timed crawls, each in its own process: the bare spider (the limit), the
product (``newscrawl crawl finews``) with storage on and off, and storage off
beside the database work of a storage-on crawl, replayed (bench/dbload.py).

Pages per second is ``downloader/response_count`` over the crawl's own
``elapsed_time_seconds`` (spider opened to closed: opening the store,
flushing the last batch and closing it count; Python's start-up does not).
The crawl process's CPU time and peak RSS come from ``wait4()``; the CPU the
database server and nginx spent during the crawl from ``/proc``.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.dbload import record_command
from bench.handlers import SETTINGS as HANDLER_SETTINGS

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
#: the bench crawls http (nginx does not tunnel CONNECT)
START_URL = "http://finews.withounder.com/"
BARE = "bare"
PRODUCT = "product"
NO_STORE = "product_nostore"
#: storage off while a storage-on crawl's database commands are replayed beside it
DB_LOAD = "nostore_dbload"
KINDS = (BARE, PRODUCT, NO_STORE, DB_LOAD)
#: store outcomes that mean "this article is in the database"
STORED = ("inserted", "updated", "unchanged")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: settings every bench crawl gets: https through nginx as http; the proxy
#: is on loopback, which the crawler refuses unless told
COMMON_SETTINGS: dict[str, Any] = {
    **HANDLER_SETTINGS,
    "NEWSCRAWL_ALLOWED_ADDRESSES": "127.0.0.1",
}


@dataclass
class CrawlRun:
    """One timed crawl."""

    kind: str
    run: int
    exit_code: int
    finish_reason: str | None
    pages: int
    items: int
    stored: int
    elapsed: float
    wall: float
    pages_per_second: float
    cpu_seconds: float
    parse_cpu_seconds: float | None
    max_rss_mb: float
    memusage_max_mb: float | None
    db_cpu_seconds: float | None
    nginx_cpu_seconds: float | None
    errors: int
    log: str
    extra: dict[str, Any] = field(default_factory=dict)


def process_cpu_seconds(pids: Iterable[int]) -> float | None:
    """User + system CPU seconds of live processes (None when none is readable).

    >>> process_cpu_seconds([os.getpid()]) is not None
    True
    >>> process_cpu_seconds([]) is None
    True
    """
    total, seen = 0.0, False
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        seen = True
    return round(total, 3) if seen else None


def _delta(after: float | None, before: float | None) -> float | None:
    return round(after - before, 3) if after is not None and before is not None else None


def crawl_command(
    kind: str, stats_file: Path, settings: Mapping[str, Any], record: Path | None = None
) -> list[str]:
    """The command line of one crawl of ``kind``; with ``record``, the product's
    database commands are saved there (bench/dbload.py)."""
    if kind == BARE:
        cmd = [sys.executable, "-m", "bench.bare", "--stats-out", str(stats_file)]
    else:
        start = [sys.executable, "-m", "newscrawl"] if record is None else record_command(record)
        cmd = [*start, "crawl", "finews", "--stats-out", str(stats_file)]
    cmd += ["-a", f"start_url={START_URL}"]
    merged: dict[str, Any] = {**COMMON_SETTINGS, **settings}
    if kind in (NO_STORE, DB_LOAD):
        merged["MONGO_ENABLED"] = False
    for name, value in merged.items():
        text = json.dumps(value) if isinstance(value, dict | list | bool) else str(value)
        cmd += ["-s", f"{name}={text}"]
    return cmd


def run_crawl(
    kind: str,
    run: int,
    *,
    proxy_url: str,
    workdir: Path,
    settings: Mapping[str, Any],
    watch_db: Iterable[int] = (),
    watch_nginx: Iterable[int] = (),
    timeout: float = 1800.0,
    record: Path | None = None,
    beside: list[str] | None = None,
) -> CrawlRun:
    """Run one crawl of ``kind`` to the end in a child process and measure it.

    ``record``: save the crawl's database commands there. ``beside``: the
    command line of a replay (``bench.dbload replay``), started as the crawl
    starts; what it reports goes to ``extra["beside"]``."""
    workdir = workdir.absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    tag = f"{kind}-{run}"
    stats_file = workdir / f"{tag}.stats.json"
    log_file = workdir / f"{tag}.log"
    stats_file.unlink(missing_ok=True)
    cmd = crawl_command(kind, stats_file, settings, record)
    env = {**os.environ, "http_proxy": proxy_url, "https_proxy": proxy_url}
    for name in ("no_proxy", "NO_PROXY", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    db_pids, nginx_pids = list(watch_db), list(watch_nginx)
    companion = _start_beside(beside, env) if beside else None
    db_before, nginx_before = process_cpu_seconds(db_pids), process_cpu_seconds(nginx_pids)
    started = time.monotonic()
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        if companion is not None:
            assert companion.stdin is not None
            companion.stdin.write("go\n")
            companion.stdin.flush()
        _, status, usage = _wait4(proc, timeout)
    wall = time.monotonic() - started
    beside_report = _finish_beside(companion) if companion is not None else None
    db_cpu = _delta(process_cpu_seconds(db_pids), db_before)
    nginx_cpu = _delta(process_cpu_seconds(nginx_pids), nginx_before)
    code = os.waitstatus_to_exitcode(status)
    stats: dict[str, Any] = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    pages = int(stats.get("downloader/response_count", 0))
    elapsed = float(stats.get("elapsed_time_seconds", 0.0)) or wall
    stored = sum(int(stats.get(f"newscrawl/store/{name}", 0)) for name in STORED)
    memusage = stats.get("memusage/max")
    result = CrawlRun(
        kind=kind,
        run=run,
        exit_code=code,
        finish_reason=stats.get("finish_reason"),
        pages=pages,
        items=int(stats.get("item_scraped_count", 0)),
        stored=stored,
        elapsed=round(elapsed, 3),
        wall=round(wall, 3),
        pages_per_second=round(pages / elapsed, 1) if elapsed else 0.0,
        # wait4() counts the parse processes (children, waited for) in the crawl's CPU
        cpu_seconds=round(usage.ru_utime + usage.ru_stime, 3),
        parse_cpu_seconds=stats.get("newscrawl/parse/worker_cpu_seconds"),
        max_rss_mb=round(usage.ru_maxrss / 1024, 1),
        memusage_max_mb=round(memusage / 2**20, 1) if memusage else None,
        db_cpu_seconds=db_cpu,
        nginx_cpu_seconds=nginx_cpu,
        errors=int(stats.get("log_count/ERROR", 0)),
        log=str(log_file),
        extra={
            "requests": int(stats.get("downloader/request_count", 0)),
            "failed": int(stats.get("downloader/exception_count", 0)),
            "statuses": {
                k.rsplit("/", 1)[1]: v
                for k, v in stats.items()
                if k.startswith("downloader/response_status_count/")
            },
            "dupefilter_filtered": int(stats.get("dupefilter/filtered", 0)),
            "write_errors": int(stats.get("newscrawl/store/write_errors", 0)),
            **({"beside": beside_report} if beside_report is not None else {}),
        },
    )
    logger.info(
        "%s run %d: %d pages in %.2fs = %.1f pages/s (cpu %.1fs, rss %.0f MB, db cpu %s)",
        kind,
        run,
        result.pages,
        result.elapsed,
        result.pages_per_second,
        result.cpu_seconds,
        result.max_rss_mb,
        result.db_cpu_seconds,
    )
    if code != 0 or result.finish_reason != "finished":
        logger.warning("%s run %d ended with code %d (%s); see %s", kind, run, code,
                       result.finish_reason, log_file)  # fmt: skip
    return result


def _start_beside(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start the replay and wait for its ``ready`` (connected, database fresh)."""
    proc = subprocess.Popen(
        cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise RuntimeError(f"the replay beside the crawl did not start: {line!r} ({cmd})")
    return proc


def _finish_beside(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Wait for the replay to send its last command; what it reports."""
    out, _ = proc.communicate(timeout=600)
    last = out.strip().splitlines()[-1:] if out else []
    report: dict[str, Any] = json.loads(last[0]) if last else {}
    report["exit_code"] = proc.returncode
    return report


def _wait4(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, int, Any]:
    """``os.wait4`` on the child (its own rusage: CPU time, peak RSS), with a timeout."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return pid, status, usage
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            logger.error("crawl pid %d killed after %.0fs", proc.pid, timeout)
            return pid, status, usage
        time.sleep(0.05)


def median_of(runs: Iterable[CrawlRun], name: str) -> float | None:
    """The median of one measure over runs (None when there is no run).

    >>> r = [CrawlRun("bare", i, 0, "finished", 10, 0, 0, 1.0, 1.0, v, 1.0, None, 1.0, None,
    ...      None, None, 0, "") for i, v in enumerate([3.0, 1.0, 2.0])]
    >>> median_of(r, "pages_per_second")
    2.0
    """
    values = [float(getattr(run, name)) for run in runs if getattr(run, name) is not None]
    return round(statistics.median(values), 3) if values else None


def round_ratios(runs: Iterable[CrawlRun], top: str, bottom: str) -> list[float]:
    """Pages per second of ``top`` over ``bottom`` in each round that ran both:
    crawls of one round ran minutes apart, so a machine that speeds up or slows
    down over the bench moves these less than the ratio of the medians.

    >>> r = [CrawlRun(k, i, 0, "finished", 10, 0, 0, 1.0, 1.0, v, 1.0, None, 1.0, None,
    ...      None, None, 0, "") for k, i, v in [("bare", 0, 4.0), ("product", 0, 3.0),
    ...                                         ("bare", 1, 2.0), ("product", 1, 1.8),
    ...                                         ("bare", 2, 5.0)]]
    >>> round_ratios(r, "product", "bare")
    [0.75, 0.9]
    """
    rate: dict[tuple[str, int], float] = {(run.kind, run.run): run.pages_per_second for run in runs}
    rounds = sorted({run.run for run in runs})
    return [
        round(rate[(top, n)] / rate[(bottom, n)], 3)
        for n in rounds
        if rate.get((top, n)) and rate.get((bottom, n))
    ]


#: (key, top kind, bottom kind): the two ratios the issues ask for, and the
#: ceilings the database's own work puts on them
RATIOS = (
    ("product_over_limit", PRODUCT, BARE),
    ("storage_on_over_off", PRODUCT, NO_STORE),
    ("dbload_over_off", DB_LOAD, NO_STORE),
    ("dbload_over_limit", DB_LOAD, BARE),
)


def summarize_runs(runs: list[CrawlRun]) -> dict[str, Any]:
    """Per kind: the runs, their medians; the ratios of ``RATIOS``, of the
    medians and of each round."""
    out: dict[str, Any] = {}
    for kind in KINDS:
        mine = [run for run in runs if run.kind == kind]
        if not mine:
            continue
        out[kind] = {
            "runs": [asdict(run) for run in mine],
            "median": {
                name: median_of(mine, name)
                for name in (
                    "pages_per_second",
                    "pages",
                    "elapsed",
                    "cpu_seconds",
                    "parse_cpu_seconds",
                    "max_rss_mb",
                    "db_cpu_seconds",
                    "nginx_cpu_seconds",
                    "items",
                    "stored",
                )
            },
            "all_finished": all(r.finish_reason == "finished" and r.exit_code == 0 for r in mine),
        }
    rate = {k: out[k]["median"]["pages_per_second"] for k in out}
    for key, top, bottom in RATIOS:
        if rate.get(top) and rate.get(bottom):
            out[key] = round(rate[top] / rate[bottom], 3)
        ratios = round_ratios(runs, top, bottom)
        if ratios:
            out[f"{key}_rounds"] = ratios
    return out
