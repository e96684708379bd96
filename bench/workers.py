"""Issue 7's line of the bench: pages per second of one distributed worker and of two.

The hook is :func:`newscrawl.distributed.workers.run_workers` (the
distributed mode's own launcher: N ``newscrawl crawl finews --distributed``
processes sharing one Redis frontier and one MongoDB). When that module or
``redis-server`` is missing, the measure is reported as skipped with the
reason, and the rest of the bench runs on.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.crawls import COMMON_SETTINGS, REPO, START_URL

logger = logging.getLogger(__name__)


def find_hook() -> tuple[Any, str | None]:
    """``run_workers`` of the distributed mode, or None and why not."""
    try:
        module = importlib.import_module("newscrawl.distributed.workers")
    except ImportError as exc:
        return None, f"no distributed mode yet (newscrawl.distributed.workers: {exc})"
    run = getattr(module, "run_workers", None)
    if not callable(run):
        return None, "newscrawl.distributed.workers has no run_workers()"
    if shutil.which("redis-server") is None and not os.environ.get("REDIS_URL"):
        return None, "redis-server is not installed (apt-get install redis-server)"
    return run, None


def as_setting(value: Any) -> str:
    """A setting value as text for ``-s NAME=VALUE`` (JSON for dicts, lists, booleans).

    >>> as_setting({"a": 1}), as_setting(True), as_setting(3)
    ('{"a": 1}', 'true', '3')
    """
    return json.dumps(value) if isinstance(value, dict | list | bool) else str(value)


def measure_workers(
    proxy_url: str,
    workdir: Path,
    settings: Mapping[str, Any],
    counts: Iterable[int] = (1, 2),
    runs: int = 1,
) -> dict[str, Any]:
    """Pages per second for each worker count (median of ``runs``), each crawl
    into its own fresh database; ``{"status": "skipped", "reason": ...}`` when
    the distributed mode is not there."""
    run_workers, reason = find_hook()
    if run_workers is None:
        logger.warning("workers: skipped: %s", reason)
        return {"status": "skipped", "reason": reason}
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])
    )
    out: dict[str, Any] = {"status": "measured", "runs": {}}
    for count in counts:
        results = []
        for run in range(runs):
            merged = {
                **COMMON_SETTINGS,
                **settings,
                "MONGO_DATABASE": f"bench_workers{count}_{run}",
            }
            options: dict[str, Any] = {}
            if "spider_args" in inspect.signature(run_workers).parameters:
                options["spider_args"] = {"start_url": START_URL}
            result = run_workers(
                count,
                proxy_url,
                workdir=Path(workdir).absolute() / f"workers-{count}-{run}",
                settings={name: as_setting(value) for name, value in merged.items()},
                **options,
            )
            data = result.to_json()
            logger.info("workers=%d run %d: %s", count, run, data)
            if any(code != 0 for code in data["exit_codes"]):
                tail = "".join(result.outputs)[-1500:]
                logger.error("workers=%d failed: %s\n%s", count, data["exit_codes"], tail)
                return {"status": "failed", "reason": f"exit codes {data['exit_codes']}",
                        "output_tail": tail}  # fmt: skip
            results.append(data)
        rates = sorted(r["pages_per_second"] for r in results)
        out["runs"][str(count)] = results
        out[f"pages_per_second_{count}"] = rates[len(rates) // 2]
    return out
