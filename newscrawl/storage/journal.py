"""The local journal: where documents wait while MongoDB cannot be reached.

When the store cannot write a batch (the server is down, stepping down, or
does not acknowledge), the batch's prepared documents are appended to an
append-only JSONL file and the crawl goes on; the store replays the journal
when the server answers again, or at the next start. Replaying is
idempotent (a document written twice is merged into itself), so a replay cut
short is simply done again.

Layout, under ``NEWSCRAWL_DATA_DIR``::

    journal/<target>/target.json               # which server and database (redacted)
    journal/<target>/<utc time>-<pid>-<id>.jsonl

``<target>`` is a hash of the server and database, so a journal is only ever
replayed into the database it was meant for. One line per record, in
MongoDB Extended JSON (canonical mode: dates, 32/64-bit integers and doubles
come back exactly as they went in)::

    {"kind": "article", "run_id": "…", "seen_at": {"$date": …}, "doc": {…}}
    {"kind": "rejection", "doc": {…}}

Each line is written whole and flushed to disk (``fsync``) before the batch
counts as journaled. The file being written is locked (``flock``), so a
second process replaying the same journal leaves it alone; files are
deleted only after every record in them is stored. A line that cannot be
read (a crash in the middle of a write) is copied to ``<file>.bad`` for a
human and skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS

from newscrawl.storage.documents import Document

logger = logging.getLogger(__name__)

ARTICLE = "article"
REJECTION = "rejection"
SUFFIX = ".jsonl"
_READ_OPTIONS = CANONICAL_JSON_OPTIONS.with_options(tz_aware=True, tzinfo=UTC)


def encode_record(record: Document) -> str:
    """One journal line (no newline inside: JSON escapes them).

    >>> from datetime import datetime, UTC
    >>> line = encode_record({"kind": "article", "doc": {"n": 2**40, "x": 1.0,
    ...                       "at": datetime(2024, 1, 1, tzinfo=UTC), "t": "新\\n闻"}})
    >>> line
    '{"kind": "article", "doc": {"n": {"$numberLong": "1099511627776"}, "x": {"$numberDouble": "1.0"}, "at": {"$date": {"$numberLong": "1704067200000"}}, "t": "新\\\\n闻"}}'
    >>> decode_record(line)["doc"]["at"]
    datetime.datetime(2024, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """  # noqa: E501
    return json_util.dumps(record, json_options=CANONICAL_JSON_OPTIONS, ensure_ascii=False)


def decode_record(line: str) -> Document:
    """The record :func:`encode_record` wrote."""
    record = json_util.loads(line, json_options=_READ_OPTIONS)
    if not isinstance(record, dict):
        raise ValueError("a journal line must hold a JSON object")
    return record


def article_record(doc: Document, run_id: str, seen_at: datetime) -> Document:
    """The journal record of a prepared article document."""
    return {"kind": ARTICLE, "run_id": run_id, "seen_at": seen_at, "doc": doc}


def rejection_record(doc: Document) -> Document:
    """The journal record of a rejection document."""
    return {"kind": REJECTION, "doc": doc}


class Journal:
    """The journal files of one target (server + database) in ``directory``.

    Thread-safe: ``append`` may be called from several worker threads.
    """

    def __init__(self, directory: Path, label: Document | None = None) -> None:
        self.directory = Path(directory)
        self.label = label or {}
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._path: Path | None = None

    def __repr__(self) -> str:
        return f"Journal({str(self.directory)!r})"

    # -- writing -------------------------------------------------------------

    def append(self, records: Sequence[Document]) -> None:
        """Append records and flush them to disk before returning. Raises
        OSError (disk full, permissions): then they are not journaled."""
        if not records:
            return
        text = "".join(encode_record(record) + "\n" for record in records)
        with self._lock:
            handle = self._open()
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    def seal(self) -> Path | None:
        """Close the file being written (the next append starts a new one), so
        that it can be replayed; returns it."""
        with self._lock:
            handle, path = self._file, self._path
            self._file = self._path = None
        if handle is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()
        return path

    close = seal

    def _open(self) -> IO[str]:
        if self._file is not None:
            return self._file
        self.directory.mkdir(parents=True, exist_ok=True)
        label = self.directory / "target.json"
        if self.label and not label.exists():
            label.write_text(json.dumps(self.label, indent=1) + "\n", encoding="utf-8")
        stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:6]}{SUFFIX}"
        handle = open(path, "a", encoding="utf-8")
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        self._file, self._path = handle, path
        logger.info("Journaling to %s", path)
        return handle

    # -- reading -------------------------------------------------------------

    def files(self) -> list[Path]:
        """Every journal file, oldest first (including one being written)."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(f"*{SUFFIX}"))

    def count(self) -> int:
        """Records in the journal (lines of every file)."""
        total = 0
        for path in self.files():
            with contextlib.suppress(FileNotFoundError), open(path, "rb") as handle:
                total += sum(1 for line in handle if line.strip())
        return total

    @contextlib.contextmanager
    def claim(self, path: Path) -> Iterator[bool]:
        """Lock ``path`` for replaying: yields False when another process (or
        this one, writing it) holds it, or it is gone."""
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            yield False
            return
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield path.exists()
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def read(self, path: Path, chunk: int) -> Iterator[list[Document]]:
        """The records of ``path`` in chunks of at most ``chunk``. A line that
        cannot be read (a write cut short by a crash) is copied to
        ``<file>.bad``, logged, and skipped: the others are still replayed."""
        batch: list[Document] = []
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = decode_record(line)
                except ValueError as exc:
                    self._set_aside(path, number, line, exc)
                    continue
                batch.append(record)
                if len(batch) >= chunk:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def _set_aside(self, path: Path, number: int, line: str, exc: Exception) -> None:
        bad = path.with_name(path.name + ".bad")
        with open(bad, "a", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(line if line.endswith("\n") else line + "\n")
        logger.warning(
            "Line %d of %s cannot be read (%s), a write cut short? Kept in %s", number, path, exc,
            bad,
        )  # fmt: skip

    def remove(self, path: Path) -> None:
        """Delete a replayed file."""
        path.unlink(missing_ok=True)
        logger.info("Replayed and removed %s", path)

    def writing(self) -> Path | None:
        """The file this process is appending to, if any."""
        return self._path


def journal_directory(data_dir: str | Path, target_id: str) -> Path:
    """``<data_dir>/journal/<target_id>``, absolute.

    >>> journal_directory("/tmp/x", "ab12").as_posix()
    '/tmp/x/journal/ab12'
    """
    return (Path(data_dir) / "journal" / target_id).absolute()


def other_journals(directory: Path) -> list[tuple[Path, int, str]]:
    """Journals in the folder next to ``directory`` (the journals of other
    servers or databases) that hold files: (folder, files, what target.json
    says). A crawl on their database replays them."""
    out: list[tuple[Path, int, str]] = []
    parent = Path(directory).parent
    if not parent.is_dir():
        return out
    for folder in sorted(parent.iterdir()):
        if folder == Path(directory) or not folder.is_dir():
            continue
        files = len(list(folder.glob(f"*{SUFFIX}")))
        if files:
            try:
                label = (folder / "target.json").read_text(encoding="utf-8").strip()
            except OSError:
                label = "(no target.json)"
            out.append((folder, files, " ".join(label.split())))
    return out
