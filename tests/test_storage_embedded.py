"""The embedded SecantusDB server: start, stop, reuse, stale files, errors.

These start real ``secantusd-py`` processes on loopback (port 0).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pymongo import MongoClient

from newscrawl.storage.embedded import EmbeddedMongo, find_executable, pid_alive, ping
from newscrawl.storage.errors import EmbeddedMongoError, StorageUnavailable

ROOT = Path(__file__).resolve().parent.parent


def count_docs(uri: str) -> int:
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        return client.t.c.count_documents({})
    finally:
        client.close()


def insert_doc(uri: str, doc: dict) -> None:
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        client.t.c.insert_one(doc)
    finally:
        client.close()


@pytest.fixture
def refused_port():
    """A loopback port bound (nobody else gets it) but not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def test_start_stop_and_data_survives(tmp_path):
    storage = tmp_path / "mongo"
    server = EmbeddedMongo(storage)
    uri = server.start()
    try:
        assert uri == f"mongodb://127.0.0.1:{server.port}/"
        assert ping(server.port)
        info = json.loads((storage / "server.json").read_text())
        assert info["pid"] == server.pid and info["port"] == server.port
        assert info["started_at"].endswith("+00:00")
        log = (tmp_path / "secantusd.log").read_text()
        assert f"secantus listening on 127.0.0.1:{server.port}" in log
        insert_doc(uri, {"_id": 1})
    finally:
        port, pid = server.port, server.pid
        server.stop()
    assert not ping(port, timeout=0.3)
    assert not pid_alive(pid)
    assert not (storage / "server.json").exists()
    assert (storage / "WiredTiger").exists()
    with EmbeddedMongo(storage) as again:
        assert again.uri is not None and count_docs(again.uri) == 1


def test_second_user_reuses_and_the_last_one_stops(tmp_path):
    storage = tmp_path / "mongo"
    first = EmbeddedMongo(storage)
    second = EmbeddedMongo(storage)
    uri = first.start()
    try:
        assert second.start() == uri
        assert second.reused and not first.reused and second.pid == first.pid
        second.stop()
        assert ping(first.port), "the first user's server was stopped under it"
        # the other way round: the starter leaves first, the joiner stops it
        third = EmbeddedMongo(storage)
        assert third.start() == uri
        port, pid = first.port, first.pid
        first.stop()
        assert ping(port)
        third.stop()
        assert not pid_alive(pid)
    finally:
        first.stop()
        second.stop()


def test_server_of_another_process_is_shared(tmp_path):
    storage = tmp_path / "mongo"
    child_code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from newscrawl.storage.embedded import EmbeddedMongo
        server = EmbeddedMongo(Path({str(storage)!r}))
        print(server.start(), flush=True)
        sys.stdin.read()
        server.stop()
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", child_code],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        child_uri = child.stdout.readline().strip()
        mine = EmbeddedMongo(storage)
        assert mine.start() == child_uri and mine.reused
        port, pid = mine.port, mine.pid
        mine.stop()
        assert ping(port), "stopped a server another process still uses"
        child.stdin.close()
        assert child.wait(60) == 0
        assert not pid_alive(pid)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.mark.parametrize("stale", ["dead pid", "live pid, no server"])
def test_stale_server_json_is_replaced(tmp_path, refused_port, stale):
    storage = tmp_path / "mongo"
    storage.mkdir()
    if stale == "dead pid":
        gone = subprocess.Popen(["true"])
        gone.wait()
        pid = gone.pid
    else:
        pid = os.getpid()
    stale_info = {"pid": pid, "port": refused_port, "started_at": "2020-01-01T00:00:00+00:00"}
    (storage / "server.json").write_text(json.dumps(stale_info))
    with EmbeddedMongo(storage) as server:
        assert not server.reused and server.port != refused_port
        info = json.loads((storage / "server.json").read_text())
        assert info["pid"] == server.pid != pid
    assert pid_alive(os.getpid())


def test_missing_executable_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "nowhere" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_executable() is None
    with pytest.raises(EmbeddedMongoError, match="SecantusDB") as info:
        EmbeddedMongo(tmp_path / "mongo").start()
    assert "pip install" in str(info.value) and "MONGO_URI" in str(info.value)
    assert isinstance(info.value, StorageUnavailable)


def test_server_that_exits_reports_its_log_and_keeps_data(tmp_path):
    storage = tmp_path / "mongo"
    storage.mkdir()
    (storage / "precious.wt").write_text("data")
    failing = script(tmp_path, "secantusd-py", 'echo "fatal: cannot open the store" >&2; exit 3')
    with pytest.raises(EmbeddedMongoError, match="exited with code 3") as info:
        EmbeddedMongo(storage, executable=failing).start()
    assert "fatal: cannot open the store" in str(info.value)
    assert (storage / "precious.wt").read_text() == "data"
    assert not (storage / "server.json").exists()


def test_server_that_never_listens_times_out(tmp_path):
    silent = script(tmp_path, "secantusd-py", "exec sleep 60")
    server = EmbeddedMongo(tmp_path / "mongo", executable=silent, start_timeout=1)
    started = time.monotonic()
    with pytest.raises(EmbeddedMongoError, match="did not log its port within 1s"):
        server.start()
    assert time.monotonic() - started < 15
    assert server._proc is None  # the child was stopped, not left behind


def test_busy_data_folder_fails_clearly_and_harms_nothing(tmp_path):
    storage = tmp_path / "mongo"
    with EmbeddedMongo(storage) as owner:
        assert owner.uri is not None
        insert_doc(owner.uri, {"_id": "kept"})
        info_file = storage / "server.json"
        saved = info_file.read_text()
        info_file.unlink()  # lost: a second server is tried on the same data
        with pytest.raises(EmbeddedMongoError, match="exited with code") as info:
            EmbeddedMongo(storage).start()
        assert "WiredTiger" in str(info.value) or "busy" in str(info.value)
        assert count_docs(owner.uri) == 1
        info_file.write_text(saved)
        pid = owner.pid
    assert pid is not None and not pid_alive(pid)
