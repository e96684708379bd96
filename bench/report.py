"""The bench's results as a Markdown table, and the machine they were measured on."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
from pathlib import Path
from typing import Any

#: targets of issues 8 and 9
PRODUCT_OVER_LIMIT = 0.85
STORAGE_ON_OVER_OFF = 0.95


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model, load and versions of what the bench runs."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }
    try:
        import scrapy

        info["scrapy"] = scrapy.__version__
    except ImportError:  # pragma: no cover - scrapy is a requirement
        info["scrapy"] = None
    try:
        out = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False)
        info["nginx"] = out.stderr.strip().split("/")[-1] or None
    except OSError:
        info["nginx"] = None
    return info


def _cpu_model() -> str | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or None
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return match.group(1).strip() if match else None


def _memory_gb() -> float | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    match = re.search(r"^MemTotal:\s*(\d+) kB", text, re.M)
    return round(int(match.group(1)) / 2**20, 1) if match else None


def _parse_cpu(median: dict[str, Any]) -> str:
    """`` (p)`` when the crawl had parse processes that used p CPU seconds."""
    parse = median.get("parse_cpu_seconds")
    return f" ({_fmt(parse)})" if parse else ""


def verdict(value: float | None, target: float) -> str:
    """``✓`` when ``value`` reaches ``target``, ``✗`` when not, ``–`` when unmeasured.

    >>> verdict(0.9, 0.85), verdict(0.5, 0.85), verdict(None, 0.85)
    ('✓', '✗', '–')
    """
    if value is None:
        return "–"
    return "✓" if value >= target else "✗"


def _fmt(value: Any, digits: int = 1) -> str:
    """A number for a table cell.

    >>> _fmt(3.14159), _fmt(None), _fmt(12), _fmt(0.8512, 3)
    ('3.1', '–', '12', '0.851')
    """
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _runs(kind: dict[str, Any]) -> str:
    return ", ".join(_fmt(run["pages_per_second"]) for run in kind.get("runs", []))


def _rounds(ratios: list[float] | None) -> str:
    """The ratio of each round, and their median.

    >>> _rounds([0.81, 0.79, 0.9]), _rounds(None)
    ('0.810, 0.790, 0.900 (median 0.810)', '–')
    """
    if not ratios:
        return "–"
    listed = ", ".join(_fmt(value, 3) for value in ratios)
    return f"{listed} (median {_fmt(statistics.median(ratios), 3)})"


def markdown(results: dict[str, Any]) -> str:
    """The results as Markdown (tables and a few lines)."""
    lines: list[str] = []
    crawls = results.get("crawls") or {}
    mach = results.get("machine") or {}
    site = results.get("site") or {}
    lines += [
        f"Replica: {site.get('articles', '?')} articles, {site.get('pages', '?')} pages, "
        f"served by nginx {mach.get('nginx') or ''} (http; parity with the Python replica "
        f"checked on {(results.get('parity') or {}).get('urls', '?')} URLs). "
        f"Machine: {mach.get('nproc')} cores ({mach.get('cpu_model')}), "
        f"{mach.get('memory_gb')} GB, load average {mach.get('load_average')} at the start, "
        f"{(results.get('machine_end') or {}).get('load_average')} at the end. "
        f"Commit {results.get('revision') or '?'}, {results.get('started_at', '?')}.",
        "",
    ]
    if crawls:
        lines += [
            "| crawl | pages/s (median) | runs | pages | crawl CPU s (of it parse processes) "
            "| DB CPU s | nginx CPU s | peak RSS MB |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        labels = {
            "bare": "limit: bare spider (no extraction, no pipelines, no DB)",
            "product": "product: `newscrawl crawl finews`, storage on",
            "product_nostore": "product, storage off (`MONGO_ENABLED=False`)",
            "nostore_dbload": "storage off, beside a storage-on crawl's database commands "
            "replayed into the same server (`bench/dbload.py`)",
        }
        for key, label in labels.items():
            kind = crawls.get(key)
            if not kind:
                continue
            med = kind["median"]
            lines.append(
                f"| {label} | {_fmt(med['pages_per_second'])} | {_runs(kind)} "
                f"| {_fmt(med['pages'], 0)} | {_fmt(med['cpu_seconds'])}{_parse_cpu(med)} "
                f"| {_fmt(med['db_cpu_seconds'])} | {_fmt(med['nginx_cpu_seconds'])} "
                f"| {_fmt(med['max_rss_mb'], 0)} |"
            )
        ratio = crawls.get("product_over_limit")
        storage = crawls.get("storage_on_over_off")
        lines += [
            "",
            "| ratio | value (of the medians) | each round | target | |",
            "| --- | ---: | --- | ---: | --- |",
            f"| product / limit (issue 8) | {_fmt(ratio, 3)} "
            f"| {_rounds(crawls.get('product_over_limit_rounds'))} | ≥ {PRODUCT_OVER_LIMIT} "
            f"| {verdict(ratio, PRODUCT_OVER_LIMIT)} |",
            f"| storage on / storage off (issue 9) | {_fmt(storage, 3)} "
            f"| {_rounds(crawls.get('storage_on_over_off_rounds'))} "
            f"| ≥ {STORAGE_ON_OVER_OFF} | {verdict(storage, STORAGE_ON_OVER_OFF)} |",
        ]
        for key, label, target in (
            ("dbload_over_off", "ceiling of storage on / off: the database's work alone",
             STORAGE_ON_OVER_OFF),
            ("dbload_over_limit", "ceiling of product / limit: the database's work alone",
             PRODUCT_OVER_LIMIT),
        ):  # fmt: skip
            if crawls.get(key) is not None:
                lines.append(
                    f"| {label} | {_fmt(crawls[key], 3)} | {_rounds(crawls.get(f'{key}_rounds'))} "
                    f"| (≥ {target} needed) | {verdict(crawls[key], target)} |"
                )
        lines.append("")
        dbload = results.get("dbload")
        if dbload:
            lines += [
                f"Database work replayed: {dbload['commands']} commands recorded from an "
                "untimed storage-on crawl (SecantusDB CPU "
                f"{_fmt(dbload['recorded_db_cpu_seconds'])} s), "
                f"sent on the storage-off crawl's timeline (x{dbload['scale']}). The crawler "
                "does none of the storage work in that crawl: a crawl that stores its articles "
                "cannot run faster than it on this machine.",
                "",
            ]
    cpu = results.get("cpu")
    if cpu:
        per = cpu["us_per_article"]
        stages = [s for s in per if s != "links"]
        cells = [_fmt(per[s]) for s in stages]
        cells += [f"**{_fmt(cpu['us_per_article_total'])}**", _fmt(per.get("links"))]
        lines += [
            f"Per-article CPU over {cpu['articles']} saved pages (µs, best of the passes; "
            f"dedup signature: `{cpu.get('dedup_function') or 'not available'}`):",
            "",
            "| " + " | ".join([*stages, "**total**", "links (also in the limit)"]) + " |",
            "|" + " ---: |" * (len(stages) + 2),
            "| " + " | ".join(cells) + " |",
            "",
            "Top of the profile (own time): "
            + "; ".join(
                f"`{row['function']}` {row['own_share'] * 100:.0f}%"
                for row in cpu.get("profile_top10", [])[:5]
            ),
            "",
        ]
    writes = results.get("writes")
    if writes and "writer" in writes:
        lines += [
            f"Write path, {writes['documents']} documents into the same SecantusDB "
            f"(batches of {writes['batch_size']}):",
            "",
            "| ArticleWriter (bulk: new articles inserted, known ones replaced) docs/s "
            "| one insert_one per item docs/s "
            "| insert_many docs/s | writer / insert_one |",
            "| ---: | ---: | ---: | ---: |",
            f"| {_fmt(writes['writer']['docs_per_second'])} "
            f"| {_fmt(writes['insert_one']['docs_per_second'])} "
            f"| {_fmt(writes['insert_many']['docs_per_second'])} "
            f"| {_fmt(writes.get('writer_over_insert_one'), 2)} |",
            "",
        ]
    memory = results.get("memory") or {}
    if memory:
        peak = _fmt(memory.get("product_peak_rss_mb"), 0)
        bare = _fmt(memory.get("bare_peak_rss_mb"), 0)
        state = memory.get("dedup_state") or "not measured"
        lines.append(
            f"Peak memory of a full crawl (storage on): {peak} MB RSS of the crawl process "
            f"(bare spider {bare} MB). Dedup state per article: {state} "
            "(bench/neardup.py; in each crawler: the LSH band table)."
        )
        lines.append("")
    workers = results.get("workers") or {}
    if workers.get("status") == "measured":
        lines += [
            "| workers | 1 | 2 |",
            "| --- | ---: | ---: |",
            f"| pages/s | {_fmt(workers.get('pages_per_second_1'))} "
            f"| {_fmt(workers.get('pages_per_second_2'))} |",
            "",
        ]
    elif workers:
        lines += [f"Workers (issue 7): {workers.get('status')}: {workers.get('reason')}", ""]
    return "\n".join(lines).rstrip() + "\n"
