"""``newscrawl schedule``: crawls on a timer, never two at once for one site.

Every ``--every`` the scheduler tries to take the site's lock in MongoDB
(:mod:`newscrawl.locks`, ``crawl:<site>``); if another scheduler, on this
machine or another, holds it, this tick is skipped (logged). Holding it, it
runs one crawl in a child process (``python -m newscrawl crawl ...``: the
Twisted reactor runs once per process), renews the lease while the child
runs, logs the crawl's summary, then releases the lock. Ticks missed while a
crawl ran are not made up: the next crawl starts at the next tick.

Every run leaves a ``crawl_runs`` document: the crawl writes it itself
(:mod:`newscrawl.runs`); the scheduler then adds ``lock`` (name, owner,
token), ``scheduled_by`` and ``exit_code``, and writes a minimal document
(finish reason ``crashed``) when the child died without one.

SIGTERM or SIGINT (Ctrl-C): no new crawl starts; a running child gets one
SIGTERM (Scrapy's graceful stop: requests in flight finish, items are
stored, JOBDIR state is saved), and a SIGKILL only after ``stop_timeout``;
the lock is released and the scheduler exits 0. The child runs in its own
session, so a terminal's Ctrl-C reaches the scheduler only (Scrapy treats a
second signal as "stop now").
"""

from __future__ import annotations

import json
import logging
import math
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from pymongo.database import Database
from pymongo.errors import PyMongoError

from newscrawl.locks import MongoLock, crawl_lock_name, new_owner
from newscrawl.pipelines.mongo import new_run_id
from newscrawl.storage.client import Store, open_store
from newscrawl.summary import summarize

logger = logging.getLogger(__name__)

CRAWL_RUNS = "crawl_runs"
#: poll the child this often (seconds)
POLL_SECONDS = 0.2


@dataclass
class ScheduleOptions:
    """What ``newscrawl schedule`` was asked to do."""

    spider: str
    every: timedelta
    #: Scrapy settings for the crawls (and the store the lock lives in)
    settings: dict[str, Any] = field(default_factory=dict)
    spider_args: dict[str, str] = field(default_factory=dict)
    lock_ttl: timedelta = timedelta(seconds=60)
    #: stop after this many crawls (None: run until stopped)
    max_runs: int | None = None
    #: one tick only (for cron and systemd timers): crawl if the lock is free, then exit
    once: bool = False
    #: seconds a stopping child gets before it is killed
    stop_timeout: float = 120.0
    loglevel: str | None = None
    #: the site the lock is named after (default: the spider's name)
    site: str | None = None


def next_tick(start: float, every: float, now: float) -> float:
    """The first tick ``start + k * every`` (k >= 1) that is later than ``now``:
    ticks missed while a crawl ran are skipped, not made up.

    >>> next_tick(100.0, 10.0, 101.0), next_tick(100.0, 10.0, 135.5), next_tick(100.0, 10.0, 110.0)
    (110.0, 140.0, 120.0)
    """
    k = max(1, math.floor((now - start) / every) + 1)
    return start + k * every


def crawl_command(
    options: ScheduleOptions, run_id: str, stats_out: Path, lock: MongoLock
) -> list[str]:
    """The child's command line.

    >>> from datetime import timedelta
    >>> opts = ScheduleOptions("finews", timedelta(minutes=10), {"MONGO_DATABASE": "news"},
    ...                        {"start_url": "https://x/"}, loglevel="INFO")
    >>> class L: name, owner = "crawl:finews", "h:1:ab"
    >>> crawl_command(opts, "r1", Path("/tmp/s.json"), L())[3:]  # doctest: +NORMALIZE_WHITESPACE
    ['crawl', 'finews', '--stats-out', '/tmp/s.json', '-s', 'NEWSCRAWL_RUN_ID=r1',
     '-s', 'MONGO_DATABASE=news', '-s', 'NEWSCRAWL_CRAWL_LOCK=False',
     '-a', 'start_url=https://x/', '-L', 'INFO']
    """
    cmd = [sys.executable, "-m", "newscrawl", "crawl", options.spider]
    cmd += ["--stats-out", str(stats_out), "-s", f"NEWSCRAWL_RUN_ID={run_id}"]
    for name, value in options.settings.items():
        cmd += ["-s", f"{name}={value}"]
    cmd += ["-s", "NEWSCRAWL_CRAWL_LOCK=False"]  # the scheduler holds the lock for its crawls
    for name, value in options.spider_args.items():
        cmd += ["-a", f"{name}={value}"]
    if options.loglevel:
        cmd += ["-L", options.loglevel]
    return cmd


class Scheduler:
    """Runs ``options.spider`` every ``options.every`` under the site's lock.
    :meth:`run` blocks until stopped (a signal, :meth:`stop`, or ``max_runs``)."""

    def __init__(self, options: ScheduleOptions, *, owner: str | None = None) -> None:
        if options.every <= timedelta(0):
            raise ValueError("--every must be positive")
        self.options = options
        self.owner = owner or new_owner()
        self.site = options.site or options.spider
        self._stop = threading.Event()
        self.runs = 0
        self.skipped = 0
        #: the exit status of the last crawl (None: none ran)
        self.last_exit: int | None = None

    def stop(self) -> None:
        """Ask the loop to end (the running crawl is stopped gracefully)."""
        self._stop.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        logger.info("Got %s: stopping after the running crawl", signal.Signals(signum).name)
        self.stop()

    def run(self) -> int:
        """The timer loop. Returns 0 once stopped cleanly; with ``once``, the
        crawl's exit status (0 when the lock was held elsewhere)."""
        from newscrawl.runner import project_settings

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        settings = project_settings(dict(self.options.settings))
        store = open_store(settings)
        every = self.options.every.total_seconds()
        logger.info(
            "Scheduling %s every %s as %s (lock %s in %s, database %s)",
            self.options.spider,
            self.options.every,
            self.owner,
            crawl_lock_name(self.site),
            store.uri,
            store.db.name,
        )
        try:
            start = time.monotonic()
            tick = start
            while not self._stop.is_set():
                delay = tick - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                self._tick(store)
                if self.options.once:
                    break
                if self.options.max_runs is not None and self.runs >= self.options.max_runs:
                    break
                tick = next_tick(start, every, time.monotonic())
        finally:
            store.close()
        logger.info("Scheduler stopped: %d crawls run, %d ticks skipped", self.runs, self.skipped)
        return (self.last_exit or 0) if self.options.once else 0

    # -- one tick ------------------------------------------------------------

    def _tick(self, store: Store) -> None:
        lock = MongoLock(
            store.db, crawl_lock_name(self.site), owner=self.owner, ttl=self.options.lock_ttl
        )
        try:
            taken = lock.acquire()
        except PyMongoError as exc:
            logger.error("Cannot reach the lock %s, skipping this tick: %s", lock.name, exc)
            self.skipped += 1
            return
        if not taken:
            holder = lock.holder() or {}
            logger.info(
                "Skipping this tick: %s is held by %s until %s",
                lock.name,
                holder.get("owner"),
                holder.get("expires_at"),
            )
            self.skipped += 1
            return
        self.runs += 1
        try:
            self._crawl(store.db, lock)
        finally:
            try:
                lock.release()
            except PyMongoError as exc:
                logger.error("Could not release %s (it expires by itself): %s", lock.name, exc)

    def _crawl(self, db: Database[dict[str, Any]], lock: MongoLock) -> None:
        assert lock.lease is not None
        run_id = new_run_id()
        token = lock.lease.token
        with tempfile.TemporaryDirectory(prefix="newscrawl-schedule-") as tmp:
            stats_out = Path(tmp) / "stats.json"
            cmd = crawl_command(self.options, run_id, stats_out, lock)
            started = datetime.now(tz=UTC)
            logger.info("Crawl %s starting (lock token %d)", run_id, token)
            code = self._supervise(subprocess.Popen(cmd, start_new_session=True), lock)
            self.last_exit = code
            finished = datetime.now(tz=UTC)
            stats = _read_stats(stats_out)
        if stats:
            logger.info("Crawl %s ended (exit %d): %s", run_id, code, one_line_summary(stats))
        else:
            logger.error("Crawl %s ended with exit %d and no stats", run_id, code)
        self._record(db, run_id, lock, token, code, started, finished)

    def _supervise(self, proc: subprocess.Popen[bytes], lock: MongoLock) -> int:
        """Wait for the child, renewing the lease; stop it when asked or when
        the lock is lost or cannot be renewed in time."""
        ttl = self.options.lock_ttl.total_seconds()
        renewed = time.monotonic()
        next_renew = renewed + ttl / 3
        term_at: float | None = None
        killed = False
        while True:
            try:
                return proc.wait(timeout=POLL_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            why = None
            if self._stop.is_set():
                why = "the scheduler is stopping"
            if now >= next_renew:
                next_renew = now + ttl / 3
                try:
                    if lock.renew():
                        renewed = now
                    else:
                        why = "the lock was taken by another scheduler"
                except PyMongoError as exc:
                    logger.warning("Could not renew %s: %s", lock.name, exc)
            if now - renewed > ttl * 2 / 3:
                why = "the lock could not be renewed before it expires"
            if why and term_at is None:
                logger.info("Stopping crawl (pid %d): %s", proc.pid, why)
                proc.send_signal(signal.SIGTERM)
                term_at = now
            if term_at is not None and not killed:
                limit = self.options.stop_timeout if self._stop.is_set() else ttl / 3
                if now - term_at > limit:
                    logger.error("Crawl (pid %d) still running, killing it", proc.pid)
                    proc.kill()
                    killed = True

    def _record(
        self,
        db: Database[dict[str, Any]],
        run_id: str,
        lock: MongoLock,
        token: int,
        code: int,
        started: datetime,
        finished: datetime,
    ) -> None:
        """Add the scheduler's view to the run's record (or write one if the
        crawl could not)."""
        extra = {
            "lock": {"name": lock.name, "owner": lock.owner, "token": token},
            "scheduled_by": self.owner,
            "exit_code": code,
        }
        try:
            done = db[CRAWL_RUNS].update_one({"_id": run_id}, {"$set": extra})
            if done.matched_count == 0:
                logger.warning("Crawl %s left no run record; writing one", run_id)
                db[CRAWL_RUNS].insert_one(
                    {
                        "_id": run_id,
                        "site": self.site,
                        "spider": self.options.spider,
                        "started_at": started,
                        "finished_at": finished,
                        "elapsed_seconds": round((finished - started).total_seconds(), 3),
                        "finish_reason": "crashed",
                        **extra,
                    }
                )
        except PyMongoError as exc:
            logger.error("Could not complete the run record of %s: %s", run_id, exc)


def one_line_summary(stats: dict[str, Any]) -> str:
    """A crawl's summary on one log line.

    >>> one_line_summary({"finish_reason": "finished", "downloader/response_count": 3,
    ...                   "newscrawl/store/inserted": 2, "newscrawl/http/not_modified": 1})
    'finished in 0.0 s: 3 pages (1 not modified, 0 failed), new 2, updated 0, unchanged 0, merged 0, dropped 0, errors 0'
    """  # noqa: E501
    s = summarize(stats)
    return (
        f"{s['finish_reason']} in {s['elapsed_seconds']} s: {s['pages_fetched']} pages"
        f" ({stats.get('newscrawl/http/not_modified', 0)} not modified,"
        f" {s['requests_failed']} failed), new {s['new']}, updated {s['updated']},"
        f" unchanged {s['unchanged']}, merged {s['merged']}, dropped {sum(s['dropped'].values())},"
        f" errors {s['errors_logged']}"
    )


def _read_stats(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        logger.warning("Unreadable crawl stats %s: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}
