"""open_store: URI resolution, clear failures, the shared client, write concern."""

from __future__ import annotations

import socket
import time

import pytest
from pymongo.errors import InvalidOperation

from newscrawl.storage.client import open_store, redact_uri, resolve_mongo_uri
from newscrawl.storage.embedded import pid_alive, ping
from newscrawl.storage.errors import StorageUnavailable


@pytest.fixture
def refused_port():
    """A loopback port bound (nobody else gets it) but not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_uri_setting_then_environment_then_embedded(monkeypatch):
    monkeypatch.setenv("MONGO_URI", "mongodb://from-env:27017/")
    assert resolve_mongo_uri({"MONGO_URI": "mongodb://from-setting/"}) == "mongodb://from-setting/"
    assert resolve_mongo_uri({"MONGO_URI": None}) == "mongodb://from-env:27017/"
    assert resolve_mongo_uri({}) == "mongodb://from-env:27017/"
    monkeypatch.delenv("MONGO_URI")
    assert resolve_mongo_uri({"MONGO_URI": ""}) is None


def test_unreachable_server_fails_fast_and_clearly(refused_port):
    uri = f"mongodb://crawler:hunter2@127.0.0.1:{refused_port}/?authSource=admin"
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as info:
        open_store({"MONGO_URI": uri, "MONGO_CONNECT_TIMEOUT": 1})
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert elapsed < 5, elapsed
    assert f"mongodb://crawler:***@127.0.0.1:{refused_port}/?authSource=admin" in message
    assert "within 1s" in message
    assert "hunter2" not in message
    assert "refused" in message.lower() or "timed out" in message.lower()


@pytest.mark.parametrize("uri", ["http://example.invalid/", "mongodb://h:notaport/"])
def test_invalid_uri_is_a_clear_error(uri):
    with pytest.raises(StorageUnavailable, match="invalid MongoDB URI"):
        open_store({"MONGO_URI": uri, "MONGO_CONNECT_TIMEOUT": 1})


def test_password_is_redacted_for_logs():
    assert redact_uri("mongodb://a:b@h/") == "mongodb://a:***@h/"
    assert "secret" not in redact_uri("mongodb://h/?tlsCertificateKeyFilePassword=secret")


def test_components_share_one_client_until_the_last_closes(mongo_uri, mongo_db_name):
    settings = {"MONGO_URI": mongo_uri, "MONGO_DATABASE": mongo_db_name}
    first = open_store(settings)
    second = open_store({**settings, "MONGO_DATABASE": "other_" + mongo_db_name})
    try:
        assert first.client is second.client
        assert first.db.name == mongo_db_name
        assert second.db.name == "other_" + mongo_db_name
        assert first.embedded is None
        first.close()
        first.close()  # a second close of the same handle changes nothing
        second.db.probe.insert_one({"_id": 1})  # still open for the other user
    finally:
        second.db.client.drop_database(second.db.name)
        second.close()
    with pytest.raises(InvalidOperation):
        second.db.probe.find_one()
    third = open_store(settings)  # a new client after the last close
    try:
        assert third.client is not first.client
        assert third.db.command("ping")["ok"] == 1
    finally:
        third.close()


def test_database_defaults_to_newscrawl(mongo_uri):
    store = open_store({"MONGO_URI": mongo_uri})
    try:
        assert store.db.name == "newscrawl"
    finally:
        store.close()


def test_write_concern_settings_apply(mongo_uri, mongo_db_name):
    store = open_store(
        {
            "MONGO_URI": mongo_uri,
            "MONGO_DATABASE": mongo_db_name,
            "MONGO_WRITE_CONCERN_W": "1",
            "MONGO_WRITE_CONCERN_J": True,
        }
    )
    try:
        articles = store.db.articles
        assert articles.write_concern.document == {"w": 1, "j": True}
        articles.insert_one({"_id": "a"})
        assert articles.count_documents({}) == 1
    finally:
        store.close()


def test_embedded_default_lives_under_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("MONGO_URI", raising=False)
    settings = {"NEWSCRAWL_DATA_DIR": str(tmp_path / "state"), "MONGO_DATABASE": "t"}
    store = open_store(settings)
    also = open_store(settings)
    try:
        assert store.embedded is not None and also.embedded is store.embedded
        assert store.embedded.storage_path == tmp_path / "state" / "mongo"
        assert store.uri == store.embedded.uri
        assert (tmp_path / "state" / "secantusd.log").exists()
        store.db.c.insert_one({"_id": 1})
        port, pid = store.embedded.port, store.embedded.pid
    finally:
        store.close()
    assert ping(port), "closed under the second user"
    also.close()
    assert pid is not None and not pid_alive(pid)
    assert (tmp_path / "state" / "mongo" / "WiredTiger").exists()
