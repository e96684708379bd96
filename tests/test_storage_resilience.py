"""The write path under failure, on real servers: transient errors injected
with the server's ``failCommand`` fail point, and a server stopped and
started again (same port, same data) while a crawl writes to it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from newscrawl.storage.embedded import EmbeddedMongo
from newscrawl.storage.migrations import ensure_collections
from tests.test_storage_pipeline import article, crawl, store_stats

TEST_COMMANDS = ("--enable-test-commands",)


def wait_until(what: Callable[[], bool], timeout: float = 60, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message or what}")
        time.sleep(0.05)


@pytest.fixture
def fail_server(tmp_path: Path) -> Iterator[EmbeddedMongo]:
    """A server of its own that accepts ``configureFailPoint``."""
    with EmbeddedMongo(tmp_path / "mongo-fp", args=TEST_COMMANDS) as server:
        yield server


def arm(uri: str, database: str, data: dict[str, Any], times: int) -> None:
    """Create the collections (so the fail point only meets article writes), then arm it."""
    client: Any = MongoClient(uri)
    try:
        ensure_collections(client[database])
        client.admin.command("configureFailPoint", "failCommand", mode={"times": times}, data=data)
    finally:
        client.close()


def settings_for(uri: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "MONGO_URI": uri,
        "MONGO_DATABASE": "resilience",
        "MONGO_CONNECT_TIMEOUT": 5,
        "MONGO_RETRY_BACKOFF": 0.05,
        "NEWSCRAWL_DATA_DIR": str(tmp_path / ".newscrawl"),
        **extra,
    }


def last(uri: str, n: int) -> dict[str, str]:
    """The spider's ``until``: it stays until article ``n`` is stored (the
    journal replayed), however slow the machine is."""
    return {"uri": uri, "database": "resilience", "key": article(n)["key"]}


def stored_keys(uri: str, database: str = "resilience") -> list[str]:
    client: Any = MongoClient(uri)
    try:
        return sorted(doc["_id"] for doc in client[database].articles.find({}, {"_id": 1}))
    finally:
        client.close()


@pytest.mark.parametrize(
    ("data", "times"),
    [
        # connection closed under the write: pymongo retries once itself, we retry the rest
        ({"failCommands": ["insert"], "closeConnection": True}, 3),
        # applied but not acknowledged as the write concern asks: written again
        (
            {
                "failCommands": ["insert"],
                "writeConcernError": {"code": 64, "errmsg": "waiting for replication timed out"},
            },
            2,
        ),
        # the primary steps down (the URI's heartbeat makes the driver find it again quickly)
        ({"failCommands": ["insert"], "errorCode": 10107}, 2),
    ],
    ids=["connection-closed", "write-concern", "not-primary"],
)
def test_transient_errors_are_retried_and_nothing_is_journaled(fail_server, tmp_path, data, times):
    uri = f"{fail_server.uri}?heartbeatFrequencyMS=500"
    arm(uri, "resilience", data, times)
    (result,) = crawl(
        settings_for(uri, tmp_path, MONGO_BATCH_SIZE=5),
        [{"items": [article(n) for n in range(10)]}],
    )
    stats = store_stats(result)
    assert stats["transient_errors"] >= 1
    assert "journaled" not in stats and "outages" not in stats
    # a write applied but not acknowledged is merged into itself when written again
    assert stats.get("inserted", 0) + stats.get("merged", 0) == 10
    assert stats["journal_pending"] == 0
    assert stored_keys(uri) == sorted(article(n)["key"] for n in range(10))
    assert "try 2 of 4" in result["log"]


def test_lasting_errors_go_to_the_journal_and_back_when_the_server_recovers(fail_server, tmp_path):
    """Every write fails for a while (connections closed 8 times: two rounds
    of two tries, pymongo's own retry included): the batches are
    journaled, the crawl goes on, the probe finds the server again, the
    replays fail until the fault is over, and the last one stores everything
    before the crawl ends."""
    uri = f"{fail_server.uri}?heartbeatFrequencyMS=500"
    arm(uri, "resilience", {"failCommands": ["insert"], "closeConnection": True}, 8)
    (result,) = crawl(
        settings_for(
            uri,
            tmp_path,
            MONGO_BATCH_SIZE=2,
            MONGO_RETRY_TIMES=1,
            MONGO_RECONNECT_SECONDS=0.2,
            MONGO_MAX_PENDING_BATCHES=1,
        ),
        [{"items": [article(n) for n in range(30)], "pace": 0.1, "until": last(uri, 29)}],
    )
    stats = store_stats(result)
    assert stats["outages"] >= 2 and stats["journaled"] >= 1
    assert stats["replayed"] == stats["journaled"]
    assert stats["journal_pending"] == 0 and stats.get("write_errors", 0) == 0
    assert stored_keys(uri) == sorted(article(n)["key"] for n in range(30))
    assert not list((tmp_path / ".newscrawl" / "journal").glob("*/*.jsonl"))


class Outage(threading.Thread):
    """Stops the server once ``after`` articles are stored, keeps its port
    (bound, not listening: connections are refused, nobody else takes it)
    for at least ``down`` seconds and until the journal has a file, then
    starts the server again on the same port and data."""

    def __init__(
        self,
        server: EmbeddedMongo,
        journal_dir: Path,
        after: int,
        down: float,
        database: str = "resilience",
    ) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.storage_path = server.storage_path
        self.port = server.port
        self.journal_dir = journal_dir
        self.after = after
        self.down = down
        self.database = database
        self.restarted: EmbeddedMongo | None = None
        self.error: BaseException | None = None
        self.down_for = 0.0

    def run(self) -> None:
        try:
            uri = self.server.uri
            assert uri is not None and self.port is not None
            wait_until(
                lambda: len(stored_keys(uri, self.database)) >= self.after,
                message="first articles",
            )
            self.server.stop()
            down = time.monotonic()
            with socket.socket() as hold:
                hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                hold.bind(("127.0.0.1", self.port))
                wait_until(
                    lambda: (
                        any(self.journal_dir.glob("*/*.jsonl"))
                        and time.monotonic() - down > self.down
                    ),
                    message="a journal file",
                )
            self.restarted = EmbeddedMongo(self.storage_path, port=self.port)
            self.restarted.start()
            self.down_for = time.monotonic() - down
        except BaseException as exc:
            self.error = exc


def test_server_stopped_and_started_again_mid_crawl(tmp_path):
    journal_dir = tmp_path / ".newscrawl" / "journal"
    server = EmbeddedMongo(tmp_path / "mongo")
    uri = server.start()
    # down longer than the retries last (4 tries of 1 s): the store goes offline
    outage = Outage(server, journal_dir, after=4, down=6)
    outage.start()
    try:
        (result,) = crawl(
            settings_for(
                uri,
                tmp_path,
                MONGO_CONNECT_TIMEOUT=1,
                MONGO_BATCH_SIZE=2,
                MONGO_FLUSH_SECONDS=0.2,
                MONGO_RECONNECT_SECONDS=0.2,
            ),
            [{"items": [article(n) for n in range(100)], "pace": 0.1, "until": last(uri, 99)}],
        )
        outage.join(60)
        assert outage.error is None, outage.error
        assert outage.restarted is not None and outage.restarted.uri == uri
        stats = store_stats(result)
        assert result["stats"]["finish_reason"] == "finished"
        assert stats["outages"] == 1 and stats["journaled"] >= 1
        assert stats["replayed"] == stats["journaled"]
        assert stats["journal_pending"] == 0 and stats.get("write_errors", 0) == 0
        assert "answers again: replaying the journal" in result["log"]
        assert stored_keys(uri) == sorted(article(n)["key"] for n in range(100))
        assert not list(journal_dir.glob("*/*.jsonl"))
    finally:
        outage.join(60)
        if outage.restarted is not None:
            outage.restarted.stop()
        server.stop()
