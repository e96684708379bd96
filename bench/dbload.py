"""The database's share of a crawl, measured apart from the crawler.

A crawl with storage on makes the database server work on the same two cores
as the crawler. How much of the gap between storage on and storage off is
that work, and how much is the crawler's own (documents, signatures, the
driver)? This module answers it in two steps:

``record``
    runs ``newscrawl crawl ...`` with a pymongo command listener and saves
    every command the crawl sends (inserts, updates, finds...), with its time
    since the first one, as BSON to a file;
``replay``
    sends those commands, in order and on the same timeline (stretched or
    shrunk by a factor), into a fresh database of the same server.

The bench replays a storage-on crawl's commands beside a storage-off crawl:
the database does the same work at the same pace, the crawler none of it.
That crawl's pages per second over storage off's is the ceiling of the
storage on/off ratio on this machine: a crawl that stores its articles
cannot beat a crawl that stores nothing while the server does the same work.

Usage (the bench drives both)::

    python -m bench.dbload record LOG -- crawl finews -s ...
    python -m bench.dbload replay LOG URI DATABASE SCALE

``replay`` prints ``ready`` once connected (and its database dropped), waits
for a line on stdin, replays, and prints one JSON line: commands sent,
errors, wall and CPU seconds of the replaying client.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import bson
from pymongo import MongoClient, monitoring
from pymongo.errors import PyMongoError

#: commands not replayed: the driver's own (handshake, sessions, auth) and
#: cursor follow-ups, whose cursor ids belong to the recorded server
SKIPPED = frozenset(
    {
        "hello",
        "ismaster",
        "isMaster",
        "ping",
        "buildInfo",
        "endSessions",
        "saslStart",
        "saslContinue",
        "getMore",
        "killCursors",
    }
)
#: fields the driver adds to a command for its session and cluster time
DRIVER_FIELDS = ("lsid", "$clusterTime", "$db", "txnNumber", "$readPreference")


def replayable(name: str, command: dict[str, Any]) -> dict[str, Any] | None:
    """The command as it can be sent again, or None when it is not replayed.

    >>> replayable("insert", {"insert": "a", "documents": [{"_id": 1}], "lsid": {"id": 1},
    ...                       "$db": "x"})
    {'insert': 'a', 'documents': [{'_id': 1}]}
    >>> replayable("getMore", {"getMore": 12, "collection": "a"}) is None
    True
    """
    if name in SKIPPED:
        return None
    return {key: value for key, value in command.items() if key not in DRIVER_FIELDS}


class Recorder(monitoring.CommandListener):
    """Keeps every replayable command of one database with its time since the first."""

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []
        self._first: float | None = None

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = replayable(event.command_name, dict(event.command))
        if command is None:
            return
        now = time.monotonic()
        if self._first is None:
            self._first = now
        self.commands.append({"t": now - self._first, "db": event.database_name, "cmd": command})

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def save(self, path: Path) -> int:
        """Write the commands to ``path`` (BSON, one document each); their number."""
        with open(path, "wb") as out:
            for entry in self.commands:
                out.write(bson.encode(entry))
        return len(self.commands)


def load(path: Path) -> Iterator[dict[str, Any]]:
    """The recorded commands, in order."""
    with open(path, "rb") as data:
        yield from bson.decode_file_iter(data)


def replay(
    commands: Iterable[dict[str, Any]], client: MongoClient[Any], database: str, scale: float
) -> dict[str, Any]:
    """Send ``commands`` into ``database``, command ``i`` at ``scale * t_i`` seconds
    after the call (as soon as possible when late). All recorded databases map
    to ``database``. Errors are counted, not raised: a duplicate key in a
    replay is what it was in the recording."""
    target = client[database]
    started, cpu = time.monotonic(), time.process_time()
    sent = errors = 0
    for entry in commands:
        delay = scale * entry["t"] - (time.monotonic() - started)
        if delay > 0:
            time.sleep(delay)
        try:
            target.command(entry["cmd"])
        except PyMongoError:  # every refusal is counted the same
            errors += 1
        sent += 1
    return {
        "commands": sent,
        "errors": errors,
        "wall_seconds": round(time.monotonic() - started, 3),
        "client_cpu_seconds": round(time.process_time() - cpu, 3),
    }


def record_command(log: Path) -> list[str]:
    """The start of a ``newscrawl`` command line that records to ``log`` (the
    newscrawl arguments follow)."""
    return [sys.executable, "-m", "bench.dbload", "record", str(log), "--"]


def replay_command(log: Path, uri: str, database: str, scale: float) -> list[str]:
    """The command line of a replay of ``log`` into ``database`` (see ``_replay``)."""
    return [sys.executable, "-m", "bench.dbload", "replay", str(log), uri, database, str(scale)]


def _record(argv: list[str]) -> int:
    log, sep, *crawl_argv = argv
    if sep != "--":
        raise SystemExit("usage: python -m bench.dbload record LOG -- NEWSCRAWL-ARGS...")
    recorder = Recorder()
    monitoring.register(recorder)  # every MongoClient the crawl makes from now on
    from newscrawl.cli import main as newscrawl_main

    code = newscrawl_main(crawl_argv)
    count = recorder.save(Path(log))
    print(f"bench.dbload: {count} commands recorded to {log}", file=sys.stderr)
    return code


def _replay(argv: list[str]) -> int:
    log, uri, database, scale = argv
    commands = list(load(Path(log)))
    client: MongoClient[Any] = MongoClient(uri)
    try:
        client.drop_database(database)
        print("ready", flush=True)
        sys.stdin.readline()
        print(json.dumps(replay(commands, client, database, float(scale))), flush=True)
    finally:
        client.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["record"] and len(args) >= 3:
        return _record(args[1:])
    if args[:1] == ["replay"] and len(args) == 5:
        return _replay(args[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
