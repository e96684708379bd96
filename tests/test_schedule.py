"""Scheduling: the MongoDB lock, and ``newscrawl schedule`` processes against
one database and a replica (real processes, real server, real signals)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database

from newscrawl.locks import MongoLock, crawl_lock_name
from newscrawl.replica.build import build_site, build_site_from_posts
from newscrawl.replica.posts import sample_posts_dir
from newscrawl.replica.process import ReplicaProcess
from tests.test_incremental import crawl_settings

# -- the lock --------------------------------------------------------------------------


def test_one_holder_at_a_time_until_release_or_expiry(mongo_db: Database[dict[str, Any]]) -> None:
    a = MongoLock(mongo_db, "crawl:x", owner="a", ttl=timedelta(seconds=30))
    b = MongoLock(mongo_db, "crawl:x", owner="b", ttl=timedelta(seconds=30))
    assert a.acquire() and a.lease is not None and a.lease.token == 1
    assert not b.acquire() and not b.renew() and not b.release()
    assert a.acquire()  # ours already: taken again (a new token)
    assert a.renew()
    assert a.release()
    assert b.acquire() and b.lease is not None and b.lease.token == 3
    assert not a.renew()
    holder = b.holder()
    assert holder is not None and holder["owner"] == "b"


def test_an_expired_lock_can_be_taken_and_its_old_holder_knows(
    mongo_db: Database[dict[str, Any]],
) -> None:
    a = MongoLock(mongo_db, "crawl:y", owner="a", ttl=timedelta(seconds=0.3))
    b = MongoLock(mongo_db, "crawl:y", owner="b", ttl=timedelta(seconds=30))
    assert a.acquire()
    assert not b.acquire()
    deadline = time.monotonic() + 10
    while not b.acquire():  # polls until a's lease has run out
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not a.renew()  # a must stop what the lock guarded
    assert not a.release()
    holder = b.holder()
    assert holder is not None and holder["owner"] == "b"


def test_racing_threads_get_the_lock_once(mongo_db: Database[dict[str, Any]]) -> None:
    locks = [MongoLock(mongo_db, "crawl:race", owner=f"o{i}") for i in range(16)]
    barrier = threading.Barrier(len(locks))
    won: list[str] = []

    def take(lock: MongoLock) -> None:
        barrier.wait()
        if lock.acquire():
            won.append(lock.owner)

    threads = [threading.Thread(target=take, args=(lock,)) for lock in locks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    holder = locks[0].holder()
    assert holder is not None and holder["owner"] == won[0] and holder["token"] == 1


# -- the scheduler -----------------------------------------------------------------------


def schedule_command(settings: dict[str, Any], *args: str) -> list[str]:
    cmd = [sys.executable, "-m", "newscrawl", "schedule", "finews", *args]
    for name, value in settings.items():
        cmd += ["-s", f"{name}={value}"]
    return cmd


def proxy_env(proxy_url: str) -> dict[str, str]:
    env = {**os.environ, "http_proxy": proxy_url, "https_proxy": proxy_url}
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    return env


@pytest.mark.crawl
def test_two_schedulers_never_crawl_the_site_at_the_same_time(
    tmp_path: Path, mongo_settings: dict[str, Any], mongo_db: Database[dict[str, Any]]
) -> None:
    site = tmp_path / "site"
    build_site_from_posts(sample_posts_dir(), site)
    settings = crawl_settings(mongo_settings, site)
    with ReplicaProcess.start(site) as replica:
        cmd = schedule_command(settings, "--every", "1s", "--max-runs", "3", "--lock-ttl", "20s")
        procs = [
            subprocess.Popen(
                cmd,
                cwd=tmp_path,
                env=proxy_env(replica.proxy_url),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]

    runs = list(mongo_db.crawl_runs.find().sort("started_at", 1))
    assert len(runs) == 6, [r.get("finish_reason") for r in runs]
    for run in runs:
        assert run["finish_reason"] == "finished" and run["exit_code"] == 0, run
        assert run["lock"]["name"] == crawl_lock_name("finews")
        assert run["started_at"] < run["finished_at"]
    # one crawl at a time: each run starts after the previous one ended, and
    # the lock's fencing token grows with every crawl
    for before, after in itertools.pairwise(runs):
        assert after["started_at"] >= before["finished_at"], (before["_id"], after["_id"])
    assert [run["lock"]["token"] for run in runs] == sorted({r["lock"]["token"] for r in runs})
    assert {run["scheduled_by"] for run in runs} == {r["lock"]["owner"] for r in runs}
    assert len({run["scheduled_by"] for run in runs}) == 2  # both took turns
    # they did meet the lock held by the other
    assert any("Skipping this tick" in output for output in outputs)
    lock = mongo_db.locks.find_one({"_id": crawl_lock_name("finews")})
    assert lock is not None and lock["owner"] is None  # released


@pytest.mark.crawl
def test_sigterm_stops_the_running_crawl_gracefully_and_releases_the_lock(
    tmp_path: Path, mongo_settings: dict[str, Any], mongo_db: Database[dict[str, Any]]
) -> None:
    site = tmp_path / "site"
    build_site(site, articles=300, seed=20261203)
    settings = crawl_settings(
        mongo_settings, site, AUTOTHROTTLE_ENABLED="False", DOWNLOAD_DELAY="0.02"
    )
    log = site / "access.jsonl"
    with ReplicaProcess.start(site, access_log=log) as replica:
        proc = subprocess.Popen(
            schedule_command(settings, "--every", "1h"),
            cwd=tmp_path,
            env=proxy_env(replica.proxy_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not log.exists() or len(log.read_text().splitlines()) < 100:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        held = mongo_db.locks.find_one({"_id": crawl_lock_name("finews")})
        assert held is not None and held["owner"]
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, output[-3000:]
    runs = list(mongo_db.crawl_runs.find())
    assert len(runs) == 1
    assert runs[0]["finish_reason"] == "shutdown", runs[0]
    assert runs[0]["lock"]["owner"] == held["owner"]
    assert mongo_db.articles.count_documents({}) > 0  # what was fetched is stored
    lock = mongo_db.locks.find_one({"_id": crawl_lock_name("finews")})
    assert lock is not None and lock["owner"] is None


def test_a_crawl_that_dies_still_leaves_a_run_record(
    tmp_path: Path, mongo_settings: dict[str, Any], mongo_db: Database[dict[str, Any]]
) -> None:
    # the crawl process dies at start: a downloader middleware that does not exist
    broken = {**mongo_settings, "DOWNLOADER_MIDDLEWARES": '{"no_such_module.Middleware": 1}'}
    cmd = schedule_command(broken, "--every", "1s", "--max-runs", "1")
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list(mongo_db.crawl_runs.find())
    assert len(runs) == 1
    assert runs[0]["finish_reason"] == "crashed" and runs[0]["exit_code"] != 0
    assert runs[0]["spider"] == "finews"


@pytest.mark.crawl
def test_once_crawls_unless_the_lock_is_held(
    tmp_path: Path, mongo_settings: dict[str, Any], mongo_db: Database[dict[str, Any]]
) -> None:
    site = tmp_path / "site"
    build_site_from_posts(sample_posts_dir(), site)
    settings = crawl_settings(mongo_settings, site)
    holder = MongoLock(mongo_db, crawl_lock_name("finews"), owner="someone-else")
    assert holder.acquire()
    with ReplicaProcess.start(site) as replica:
        cmd = schedule_command(settings, "--once")
        env = proxy_env(replica.proxy_url)
        held = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert held.returncode == 0, held.stderr[-3000:]
        assert "held by someone-else" in held.stderr
        assert mongo_db.crawl_runs.count_documents({}) == 0
        holder.release()
        free = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert free.returncode == 0, free.stderr[-3000:]
    run = mongo_db.crawl_runs.find_one()
    assert run is not None and run["finish_reason"] == "finished"
    assert run["lock"]["token"] == 2
    assert mongo_db.articles.count_documents({}) > 0


@pytest.mark.crawl
def test_the_crawl_lock_keeps_a_crawl_out_while_another_holds_it(
    tmp_path: Path, mongo_settings: dict[str, Any], mongo_db: Database[dict[str, Any]]
) -> None:
    """NEWSCRAWL_CRAWL_LOCK: crawls started by cron or scrapyd keep apart too."""
    from tests.crawling import run_crawl

    site = tmp_path / "site"
    build_site_from_posts(sample_posts_dir(), site)
    settings = crawl_settings(mongo_settings, site, NEWSCRAWL_CRAWL_LOCK="True")
    holder = MongoLock(mongo_db, crawl_lock_name("finews"), owner="another-crawl")
    assert holder.acquire()
    log = site / "access.jsonl"
    with ReplicaProcess.start(site, access_log=log) as replica:
        code, stats, output = run_crawl(replica.proxy_url, settings, tmp_path)
        assert stats["finish_reason"] == "locked", output[-3000:]
        assert code != 0 and "another-crawl" in output
        assert not log.exists() or log.read_text() == ""  # nothing fetched
        assert mongo_db.articles.count_documents({}) == 0
        holder.release()
        code, stats, output = run_crawl(replica.proxy_url, settings, tmp_path)
    assert code == 0, output[-3000:]
    assert stats["newscrawl/lock/token"] == 2
    assert mongo_db.articles.count_documents({}) > 0
    lock = mongo_db.locks.find_one({"_id": crawl_lock_name("finews")})
    assert lock is not None and lock["owner"] is None  # released at the end
