"""The run record (crawl_runs) when several processes share one run id, as the
workers of a distributed crawl do: each adds its part, none replaces another's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.database import Database

from newscrawl.runs import CRAWL_RUNS, run_document, write_run

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _doc(start: int, end: int, pages: int, inserted: int, failed: list[str]) -> dict[str, Any]:
    return run_document(
        run_id="run-1",
        site="finews",
        spider="finews",
        started_at=T0 + timedelta(seconds=start),
        finished_at=T0 + timedelta(seconds=end),
        finish_reason="finished",
        stats={
            "downloader/response_count": pages,
            "newscrawl/store/inserted": inserted,
            "item_dropped_reasons_count/MissingTitle": 1,
        },
        failures=[{"url": url, "reason": "http_503"} for url in failed],
    )


def test_three_workers_add_up_in_one_record(mongo_db: Database[dict[str, Any]]) -> None:
    parts = [
        ("a:1", _doc(0, 50, 100, 40, ["https://h/1"])),
        ("b:2", _doc(2, 61, 120, 55, ["https://h/2", "https://h/3"])),
        ("c:3", _doc(5, 40, 30, 5, [])),
    ]
    for worker, doc in parts:
        write_run(mongo_db, doc, worker, max_failed=2)
    write_run(mongo_db, parts[1][1], "b:2", max_failed=2)  # a retried write counts once
    (run,) = list(mongo_db[CRAWL_RUNS].find())
    assert run["_id"] == "run-1"
    assert run["pages_fetched"] == 250
    assert run["articles"]["new"] == 100
    assert run["dropped"] == {"MissingTitle": 3}
    assert run["failed_count"] == 3 and run["failed_by_reason"] == {"http_503": 3}
    assert [f["url"] for f in run["failed_urls"]] == ["https://h/1", "https://h/2"]
    assert run["started_at"] == T0 and run["finished_at"] == T0 + timedelta(seconds=61)
    assert run["elapsed_seconds"] == 61.0
    assert sorted(run["workers"]) == ["a:1", "b:2", "c:3"]
    assert run["workers"]["c:3"]["pages_fetched"] == 30


def test_one_process_writes_the_document_it_would_alone(
    mongo_db: Database[dict[str, Any]],
) -> None:
    doc = _doc(0, 9, 7, 3, ["https://h/1"])
    write_run(mongo_db, doc, "solo:1")
    run = mongo_db[CRAWL_RUNS].find_one({"_id": "run-1"})
    assert run is not None
    for name in ("pages_fetched", "articles", "dropped", "failed_count", "failed_by_reason",
                 "failed_urls", "elapsed_seconds", "finish_reason", "site", "spider",
                 "started_at", "finished_at"):  # fmt: skip
        assert run[name] == doc[name], name
