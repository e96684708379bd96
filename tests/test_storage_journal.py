"""The local journal: exact round trips, torn lines, locks, order."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import bson
from bson import Binary, Decimal128, Int64, ObjectId

from newscrawl.storage.batches import Prepared, from_records, journal_records
from newscrawl.storage.journal import Journal, decode_record, encode_record

T = datetime(2024, 5, 1, 8, 30, 15, 123000, tzinfo=UTC)


def every_type() -> dict:
    return {
        "_id": "finews:NW1",
        "int32": 7,
        "int64": Int64(7),
        "big": 2**40,
        "double": 7.0,
        "neg_zero": -0.0,
        "when": T,
        "text": '第一段。\n第二段\t"引号" \u2028 end',
        "none": None,
        "flag": True,
        "list": [1, "a", [T, None], {"k": 1.5}],
        "nested": {"%24where": "1", "a%2Eb": {"deep": [Int64(2**62)]}},
        "oid": ObjectId("65a1b2c3d4e5f60718293a4b"),
        "decimal": Decimal128("1.10"),
        "bytes": Binary(b"\x00\xff"),
    }


def test_every_bson_type_comes_back_exactly():
    doc = every_type()
    back = decode_record(encode_record({"kind": "article", "doc": doc}))["doc"]
    # equal as BSON, byte for byte: same types (int32 vs int64 vs double), same dates
    assert bson.encode(back) == bson.encode(doc)
    assert back["when"] == T and back["when"].tzinfo is not None
    assert type(back["int64"]) is Int64 and type(back["int32"]) is int


def test_a_line_is_one_line():
    line = encode_record({"doc": {"body": "a\nb\r\nc\u2028d\u0085e"}})
    assert "\n" not in line and "\r" not in line


def test_append_read_remove(tmp_path):
    journal = Journal(tmp_path / "j", label={"uri": "mongodb://x/", "database": "d"})
    batch = Prepared("run-1", T, [every_type(), {"_id": "finews:NW2"}], [{"_id": "r", "x": 1}])
    journal.append(journal_records(batch))
    journal.append(journal_records(Prepared("run-2", T, [{"_id": "finews:NW3"}])))
    assert journal.count() == 4
    (path,) = journal.files()
    assert (tmp_path / "j" / "target.json").exists()
    journal.seal()
    chunks = list(journal.read(path, chunk=3))
    assert [len(chunk) for chunk in chunks] == [3, 1]
    batches = from_records([record for chunk in chunks for record in chunk])
    assert [(b.run_id, [d["_id"] for d in b.docs]) for b in batches] == [
        ("run-1", ["finews:NW1", "finews:NW2"]),
        ("run-2", ["finews:NW3"]),
    ]
    assert batches[0].rejections == [{"_id": "r", "x": 1}]
    assert bson.encode(batches[0].docs[0]) == bson.encode(every_type())
    journal.remove(path)
    assert journal.files() == [] and journal.count() == 0


def test_files_are_replayed_oldest_first_and_sealing_starts_a_new_one(tmp_path):
    journal = Journal(tmp_path)
    journal.append([{"kind": "rejection", "doc": {"_id": 1}}])
    first = journal.seal()
    journal.append([{"kind": "rejection", "doc": {"_id": 2}}])
    second = journal.writing()
    assert journal.files() == [first, second]


def test_torn_line_is_set_aside_and_the_rest_is_read(tmp_path):
    journal = Journal(tmp_path)
    journal.append([{"kind": "rejection", "doc": {"_id": n}} for n in range(3)])
    path = journal.seal()
    assert path is not None
    text = path.read_text().splitlines()
    # a crash in the middle of a write: half a line, then more lines written by a later append
    path.write_text("\n".join([text[0], text[1][:10], text[2]]) + "\n" + text[1][:7])
    records = [r for chunk in journal.read(path, 100) for r in chunk]
    assert [r["doc"]["_id"] for r in records] == [0, 2]
    bad = path.with_name(path.name + ".bad").read_text().splitlines()
    assert bad == [text[1][:10], text[1][:7]]
    assert journal.count() == 4  # the .bad file is not a journal file; the torn lines still count


def test_a_file_being_written_cannot_be_claimed(tmp_path):
    journal = Journal(tmp_path)
    journal.append([{"kind": "rejection", "doc": {"_id": 1}}])
    (path,) = journal.files()
    other = Journal(tmp_path)
    with other.claim(path) as mine:
        assert not mine
    # another process holding it
    journal.seal()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('locked', flush=True); time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with other.claim(path) as mine:
            assert not mine
    finally:
        holder.kill()
        holder.wait()
    with other.claim(path) as mine:
        assert mine
    with other.claim(tmp_path / "gone.jsonl") as mine:
        assert not mine


def test_append_is_durable_before_it_returns(tmp_path):
    journal = Journal(tmp_path)
    journal.append([{"kind": "rejection", "doc": {"_id": 1}}])
    (path,) = journal.files()
    # readable by anyone else at once, complete, newline-terminated
    raw = os.read(os.open(path, os.O_RDONLY), 10_000).decode()
    assert raw.endswith("\n") and decode_record(raw.strip())["doc"] == {"_id": 1}


def test_journals_of_other_databases_are_listed(tmp_path):
    from newscrawl.storage.journal import other_journals

    mine = Journal(tmp_path / "aaaa", label={"uri": "mongodb://a/", "database": "d"})
    other = Journal(tmp_path / "bbbb", label={"uri": "mongodb://b/", "database": "e"})
    empty = Journal(tmp_path / "cccc")
    for journal in (mine, other):
        journal.append([{"kind": "rejection", "doc": {"_id": 1}}])
        journal.seal()
    empty.directory.mkdir()
    (listed,) = other_journals(mine.directory)
    assert listed[0] == other.directory and listed[1] == 1
    assert "mongodb://b/" in listed[2]
