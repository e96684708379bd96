"""Downstream: export since a watermark (ties, settle, CSV, the CLI) and the
change stream (``newscrawl watch``, resumed from its token), on a real server."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newscrawl.storage.documents import to_document
from newscrawl.storage.export import (
    Watermark,
    csv_columns,
    export_articles,
    updated_since,
)
from newscrawl.storage.migrations import ensure_collections
from newscrawl.storage.writer import ArticleWriter
from tests.test_storage_hostile import as_item

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def db(mongo_db):
    ensure_collections(mongo_db)
    return mongo_db


def store(db, numbers, run="run-x", **fields):
    """One batch: every article gets the same updated_at (a tie)."""
    docs = [to_document(as_item(n, **fields)) for n in numbers]
    return ArticleWriter(db, run).write(docs)


def keys(lines):
    return [json.loads(line)["_id"] for line in lines.splitlines() if line]


def code(n):
    return f"finews:NW{202401010000000000 + n}"


def test_export_streams_everything_in_order_then_only_what_changed(db):
    store(db, range(5))
    out = io.StringIO()
    first = export_articles(db, Watermark.parse(""), out=out, settle=0)
    assert first.count == 5 and keys(out.getvalue()) == [code(n) for n in range(5)]
    line = json.loads(out.getvalue().splitlines()[0])
    assert line["updated_at"].endswith("Z") and line["published_at"] == "2024-01-01T02:00:00.000Z"
    assert first.watermark == first.last == Watermark.of(db.articles.find_one({"_id": code(4)}))

    again = io.StringIO()
    assert export_articles(db, first.watermark, out=again, settle=0).count == 0
    time.sleep(0.01)
    store(db, [2], run="run-y", body="改过的正文。")  # a new version
    store(db, [7], run="run-y")  # a new article
    later = io.StringIO()
    result = export_articles(db, first.watermark, out=later, settle=0)
    assert keys(later.getvalue()) == [code(2), code(7)]
    assert json.loads(later.getvalue().splitlines()[0])["version"] == 2
    assert result.watermark > first.watermark


def test_ties_at_the_watermark_are_neither_skipped_nor_repeated(db):
    store(db, range(6))  # one updated_at for all six
    (stamp,) = db.articles.distinct("updated_at")
    # an export that stopped after the third of the tied articles
    cut = Watermark(stamp, code(2))
    out = io.StringIO()
    export_articles(db, cut, out=out, settle=0)
    assert keys(out.getvalue()) == [code(3), code(4), code(5)]
    # a plain time includes the articles at that time
    out = io.StringIO()
    export_articles(db, Watermark(stamp), out=out, settle=0)
    assert len(keys(out.getvalue())) == 6


def test_recent_writes_are_exported_again_until_they_settle(db):
    store(db, range(3))
    out = io.StringIO()
    result = export_articles(db, Watermark.parse(""), out=out, settle=3600)
    assert result.count == 3
    # the watermark stays an hour back: the same articles come again next time
    assert result.watermark.updated_at < datetime.now(tz=UTC) - timedelta(minutes=59)
    assert export_articles(db, result.watermark, out=io.StringIO(), settle=3600).count == 3


def test_csv_has_every_schema_field_and_round_trips_text(db):
    store(db, [1], body="第一段，有“引号”, 逗号。\n第二段", tags=["甲", "乙"])
    out = io.StringIO()
    export_articles(db, Watermark.parse(""), fmt="csv", out=out, settle=0)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == csv_columns() and rows[0][0] == "_id"
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["_id"] == code(1) and row["body"] == "第一段，有“引号”, 逗号。\n第二段"
    assert json.loads(row["tags"]) == ["甲", "乙"] and row["source"] == "大众日报"
    assert row["published_at"] == "2024-01-01T02:01:00.000Z" and row["share_url"] == ""


def test_export_reads_through_a_cursor(db):
    store(db, range(25))
    seen = list(updated_since(db, Watermark.parse(""), batch_size=4))
    assert [doc["_id"] for doc in seen] == [code(n) for n in range(25)]


def newscrawl(*args, env_uri, timeout=60):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MONGO_URI": env_uri}
    return subprocess.run(
        [sys.executable, "-m", "newscrawl", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
        check=False,
    )


def test_export_command_writes_the_file_and_prints_the_watermark(
    db, mongo_uri, mongo_db_name, tmp_path
):
    store(db, range(4))
    target = tmp_path / "articles.jsonl"
    args = ["--database", mongo_db_name, "--settle", "0", "--out", str(target)]
    done = newscrawl("export", "--since", "2000-01-01", *args, env_uri=mongo_uri)
    assert done.returncode == 0, done.stderr
    watermark = done.stdout.strip()
    assert keys(target.read_text()) == [code(n) for n in range(4)]
    assert Watermark.parse(watermark) == Watermark.of(db.articles.find_one({"_id": code(3)}))
    assert "4 article(s) updated after" in done.stderr
    again = newscrawl("export", "--since", watermark, *args, env_uri=mongo_uri)
    assert again.returncode == 0 and target.read_text() == ""
    # nothing new: the watermark moves on to now (minus the settle time, 0 here)
    assert Watermark.parse(again.stdout.strip()) > Watermark.parse(watermark)
    bad = newscrawl("export", "--since", "last tuesday", *args, env_uri=mongo_uri)
    assert bad.returncode != 0 and "not a watermark" in bad.stderr


def test_articles_command_prints_iso_dates(db, mongo_uri, mongo_db_name):
    store(db, [1])
    done = newscrawl("articles", "--limit", "1", "--database", mongo_db_name, env_uri=mongo_uri)
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    doc = json.loads(line)
    assert doc["published_at"] == "2024-01-01T02:01:00.000Z"
    assert doc["first_seen_at"].endswith("Z")


def start_watch(mongo_uri, database, resume_file, events):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MONGO_URI": mongo_uri}
    return subprocess.Popen(
        [sys.executable, "-m", "newscrawl", "watch", "--database", database,
         "--resume-file", str(resume_file), "--max-events", str(events)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
    )  # fmt: skip


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_watch_prints_new_and_changed_articles_and_resumes_from_its_token(
    db, mongo_uri, mongo_db_name, tmp_path
):
    token = tmp_path / "resume.json"
    watcher = start_watch(mongo_uri, mongo_db_name, token, events=3)
    try:
        wait_for(token)  # the stream is open: "from now" is recorded
        store(db, [1, 2])
        store(db, [1], run="run-y", body="新的正文。")  # a change: version 2
        out, err = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(doc["_id"], doc["version"]) for doc in lines] == [
        (code(1), 1),
        (code(2), 1),
        (code(1), 2),
    ]
    assert lines[2]["body"] == "新的正文。" and lines[0]["updated_at"].endswith("Z")

    # changes made while nobody watches are not missed: the token resumes after them
    store(db, [3, 4])
    watcher = start_watch(mongo_uri, mongo_db_name, token, events=2)
    try:
        out, err = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, err
    assert [json.loads(line)["_id"] for line in out.splitlines()] == [code(3), code(4)]
