"""Helpers for crawl tests: run a real crawl in a child process (the Twisted
reactor runs once per process) through the replica proxy into a real
database server, and compare stored documents with a replica's expected
articles."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newscrawl.items import EXTRACTED_FIELDS

#: fields compared between a stored document and an expected article
COMPARED = tuple(name for name in EXTRACTED_FIELDS if name != "key")


def callback_output(spider: Any, output: AsyncIterable[Any]) -> list[Any]:
    """Everything a spider's async callback yields, run on an event loop of its
    own (pages go through the spider's real parse process); the parse
    processes are stopped after."""

    async def collect() -> list[Any]:
        try:
            return [out async for out in output]
        finally:
            spider.reader.close()

    return asyncio.run(collect())


def run_crawl(
    proxy_url: str,
    settings: dict[str, Any],
    workdir: Path,
    spider_args: dict[str, str] | None = None,
    timeout: float = 600,
) -> tuple[int, dict[str, Any], str]:
    """Crawl ``finews`` in a child process; return (exit code, stats, output)."""
    stats_file = workdir / "stats.json"
    cmd = [sys.executable, "-m", "newscrawl", "crawl", "finews", "--stats-out", str(stats_file)]
    # the replica proxy listens on loopback, which the crawler refuses unless allowed
    settings = {"NEWSCRAWL_ALLOWED_ADDRESSES": "127.0.0.1", **settings}
    for name, value in settings.items():
        cmd += ["-s", f"{name}={value}"]
    for name, value in (spider_args or {}).items():
        cmd += ["-a", f"{name}={value}"]
    env = {**os.environ, "http_proxy": proxy_url, "https_proxy": proxy_url}
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    proc = subprocess.run(
        cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    return proc.returncode, stats, proc.stdout + proc.stderr


def load_expected(path: Path) -> dict[str, dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return {row["key"]: row for row in rows}


def as_expected(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document in the expected file's terms (dates as ISO UTC 'Z')."""
    out = dict(doc)
    published = out.get("published_at")
    if isinstance(published, datetime):
        published = published.replace(tzinfo=published.tzinfo or UTC)
        out["published_at"] = published.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def differences(docs: Iterable[dict[str, Any]], expected: dict[str, dict[str, Any]]) -> list[str]:
    """Every field where a stored document differs from its expected article."""
    problems = []
    for doc in docs:
        want = expected.get(doc["_id"])
        if want is None:
            problems.append(f"{doc['_id']}: stored but not expected ({doc.get('url')})")
            continue
        got = as_expected(doc)
        for name in COMPARED:
            a, b = got.get(name), want.get(name)
            if name in ("categories", "tags"):
                a, b = sorted(a or []), sorted(b or [])
            if a != b:
                problems.append(f"{doc['_id']} {name}: got {a!r:.120} want {b!r:.120}")
    return problems


def fetch_counts(access_log: Path) -> dict[str, int]:
    """How many times each canonical URL was fetched (robots.txt excluded)."""
    from newscrawl.sites import canonical_url

    counts: dict[str, int] = {}
    for line in access_log.read_text().splitlines():
        entry = json.loads(line)
        url = entry["url"]
        if entry["method"] == "CONNECT" or url.endswith("/robots.txt"):
            continue
        key = canonical_url(url)
        counts[key] = counts.get(key, 0) + 1
    return counts
