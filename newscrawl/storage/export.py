"""Articles out to other databases: their JSON form, and exports since a
watermark.

JSON (:func:`article_json`): a stored document as one line, dates as ISO 8601
UTC with milliseconds and a ``Z`` (``2024-05-01T08:30:00.123Z``), as
``article.schema.json`` describes for JSON readers; every other BSON value as
its plain JSON counterpart.

Exports (:func:`export_articles`) stream the articles whose ``updated_at``
is after a :class:`Watermark`, in ``(updated_at, _id)`` order, from a cursor
(constant memory whatever the number of articles), and return the watermark
to pass next time. The watermark is exact: ``updated_at`` *and* ``_id`` of
the last article exported, so articles sharing one ``updated_at`` (a whole
batch has the same one) are never skipped or repeated across a boundary.

A write is not visible the instant its ``updated_at`` is taken, so the
returned watermark never goes past ``now - settle`` seconds: the articles of
the last ``settle`` seconds are exported again next time (at-least-once:
consumers upsert by ``_id``; ``updated_at`` and ``version`` say which copy is
newer).
"""

from __future__ import annotations

import base64
import csv
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from bson import Binary, Decimal128, ObjectId, Timestamp
from pymongo.database import Database

from newscrawl.storage.schema import ARTICLES, load_schema

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_SETTLE = 60.0
JSONL = "jsonl"
CSV = "csv"
FORMATS = (JSONL, CSV)


def iso(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``; naive values are UTC.

    >>> iso(datetime(2024, 5, 1, 16, 30, 0, 123456, tzinfo=UTC))
    '2024-05-01T16:30:00.123Z'
    >>> iso(datetime(2024, 5, 1))
    '2024-05-01T00:00:00.000Z'
    """
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def jsonable(value: Any) -> Any:
    """``value`` with every BSON value as plain JSON: dates ISO (:func:`iso`),
    ObjectId and Decimal128 as strings, binary as base64, timestamps as
    ``{"t", "i"}``.

    >>> jsonable({"at": datetime(2024, 5, 1, tzinfo=UTC), "n": [1, None], "id": ObjectId("0" * 24)})
    {'at': '2024-05-01T00:00:00.000Z', 'n': [1, None], 'id': '000000000000000000000000'}
    """
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, bytes | Binary):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Timestamp):
        return {"t": value.time, "i": value.inc}
    if isinstance(value, ObjectId | Decimal128 | date):
        return str(value)
    return str(value)


def article_json(doc: Mapping[str, Any]) -> str:
    """One stored document as one line of JSON (UTF-8 text kept as is).

    >>> article_json({"_id": "finews:NW1", "title": "标题", "updated_at": datetime(2024, 5, 1)})
    '{"_id":"finews:NW1","title":"标题","updated_at":"2024-05-01T00:00:00.000Z"}'
    """
    return json.dumps(jsonable(doc), ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, order=True)
class Watermark:
    """A point in ``(updated_at, _id)`` order: an export returns the articles
    after it. Written ``<ISO time>`` or ``<ISO time>,<_id>``."""

    updated_at: datetime
    id: str = ""

    def __str__(self) -> str:
        stamp = iso(self.updated_at)
        return f"{stamp},{self.id}" if self.id else stamp

    @classmethod
    def parse(cls, text: str | None) -> Watermark:
        """A watermark from its text, a plain ISO time or date (naive = UTC),
        or nothing (the beginning).

        >>> str(Watermark.parse("2024-05-01T08:30:00.123Z,finews:NW1"))
        '2024-05-01T08:30:00.123Z,finews:NW1'
        >>> Watermark.parse("2024-05-01") == Watermark(datetime(2024, 5, 1, tzinfo=UTC))
        True
        >>> Watermark.parse("2024-05-01T16:30:00+08:00").updated_at.hour
        8
        >>> Watermark.parse("") == Watermark(EPOCH)
        True
        >>> Watermark.parse("yesterday")
        Traceback (most recent call last):
        ...
        ValueError: not a watermark or ISO 8601 time: 'yesterday'
        """
        text = (text or "").strip()
        if not text or text == "0":
            return cls(EPOCH)
        stamp, _, key = text.partition(",")
        try:
            when = datetime.fromisoformat(stamp)
        except ValueError:
            raise ValueError(f"not a watermark or ISO 8601 time: {text!r}") from None
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        return cls(when.replace(microsecond=when.microsecond // 1000 * 1000), key)

    def before(self, doc: Mapping[str, Any]) -> bool:
        """True when ``doc`` comes after this watermark.

        >>> mark = Watermark(datetime(2024, 5, 1, tzinfo=UTC), "b")
        >>> [mark.before({"updated_at": datetime(2024, 5, 1, tzinfo=UTC), "_id": k}) for k in "abc"]
        [False, False, True]
        """
        return (doc["updated_at"], str(doc["_id"])) > (self.updated_at, self.id)

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Watermark:
        """The watermark just at ``doc``."""
        return cls(doc["updated_at"], str(doc["_id"]))


def updated_since(
    db: Database[Any], since: Watermark, batch_size: int = 500
) -> Iterator[dict[str, Any]]:
    """The articles after ``since`` in ``(updated_at, _id)`` order, read
    through a cursor (``batch_size`` documents in memory at a time). The
    server reads from ``since.updated_at`` on, in the order of the
    ``updated_at_id`` index (MongoDB sorts nothing; a server that sorts
    anyway, as SecantusDB does, may use its disk and answers the first batch
    later); the few articles at exactly that time up to ``since.id`` are
    skipped here."""
    cursor = db[ARTICLES].find(
        {"updated_at": {"$gte": since.updated_at}},
        sort=[("updated_at", 1), ("_id", 1)],
        batch_size=batch_size,
        allow_disk_use=True,
    )
    with cursor:
        for doc in cursor:
            if since.before(doc):
                yield doc


def csv_columns(schema: Mapping[str, Any] | None = None) -> list[str]:
    """The CSV columns: every field of the article schema, in its order."""
    return list((schema or load_schema())["properties"])


def csv_cell(value: Any) -> str:
    """A CSV cell: text as is, dates ISO, lists and objects as JSON, null empty.

    >>> [csv_cell(v) for v in ("a", None, True, 3, ["x", "y"], datetime(2024, 5, 1, tzinfo=UTC))]
    ['a', '', 'true', '3', '["x","y"]', '2024-05-01T00:00:00.000Z']
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, list | dict):
        return json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":"))
    return str(jsonable(value))


@dataclass
class ExportResult:
    """What an export wrote and where the next one starts."""

    count: int
    watermark: Watermark
    #: the last article exported (None: nothing new)
    last: Watermark | None = None


def write_articles(
    docs: Iterator[Mapping[str, Any]], out: IO[str], fmt: str, columns: Sequence[str]
) -> Watermark | None:
    """Write ``docs`` to ``out`` as JSON lines or CSV (a header first); the
    watermark of the last one."""
    last: Watermark | None = None
    if fmt == CSV:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for doc in docs:
            writer.writerow([csv_cell(doc.get(name)) for name in columns])
            last = Watermark.of(doc)
        return last
    if fmt != JSONL:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    for doc in docs:
        out.write(article_json(doc) + "\n")
        last = Watermark.of(doc)
    return last


def next_watermark(
    since: Watermark, last: Watermark | None, now: datetime, settle: float
) -> Watermark:
    """Where the next export starts: after the last article exported, but
    never past ``now - settle`` (writes of the last seconds may not all be
    visible yet), never before ``since``.

    >>> t = datetime(2024, 5, 1, 12, tzinfo=UTC)
    >>> str(next_watermark(Watermark(EPOCH), Watermark(t, "k"), t + timedelta(hours=1), 60))
    '2024-05-01T12:00:00.000Z,k'
    >>> str(next_watermark(Watermark(EPOCH), Watermark(t, "k"), t + timedelta(seconds=10), 60))
    '2024-05-01T11:59:10.000Z'
    >>> str(next_watermark(Watermark(t, "k"), None, t + timedelta(hours=1), 60))
    '2024-05-01T12:59:00.000Z'
    """
    cap = Watermark(now - timedelta(seconds=settle))
    if last is None:
        return max(since, cap)
    return max(since, min(last, cap))


def export_articles(
    db: Database[Any],
    since: Watermark,
    fmt: str = JSONL,
    out: IO[str] | str | Path | None = None,
    settle: float = DEFAULT_SETTLE,
    batch_size: int = 500,
) -> ExportResult:
    """Write the articles updated after ``since`` to ``out`` (a text stream,
    or a path written atomically: a temporary file renamed at the end) and
    return how many, and the watermark for next time."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    now = datetime.now(tz=UTC)
    columns = csv_columns()
    counted = _Counted(updated_since(db, since, batch_size))
    if out is None or not isinstance(out, str | Path):
        last = write_articles(counted, out or sys.stdout, fmt, columns)
    else:
        path = Path(out)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                last = write_articles(counted, handle, fmt, columns)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return ExportResult(counted.count, next_watermark(since, last, now, settle), last)


class _Counted(Iterator[dict[str, Any]]):
    def __init__(self, docs: Iterator[dict[str, Any]]) -> None:
        self.docs = docs
        self.count = 0

    def __next__(self) -> dict[str, Any]:
        doc = next(self.docs)
        self.count += 1
        return doc
