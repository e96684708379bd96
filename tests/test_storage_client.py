"""open_store: URI resolution, clear failures, the shared client, write concern."""

from __future__ import annotations

import socket
import time
from typing import Any

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


def test_unacknowledged_write_concern_is_refused(mongo_uri, mongo_db_name):
    with pytest.raises(StorageUnavailable, match="unacknowledged"):
        open_store({"MONGO_URI": mongo_uri, "MONGO_WRITE_CONCERN_W": 0})
    with pytest.raises(StorageUnavailable, match="unacknowledged"):
        open_store({"MONGO_URI": f"{mongo_uri}?w=0"})


def test_credentials_in_the_uri(tmp_path):
    """A server that requires authentication: the URI's user works, a wrong
    password fails at start with a clear, redacted message."""
    from pymongo import MongoClient

    from newscrawl.storage.embedded import EmbeddedMongo
    from newscrawl.storage.migrations import ensure_collections

    with EmbeddedMongo(tmp_path / "mongo") as server:
        admin: Any = MongoClient(server.uri)
        roles = [{"role": "readWrite", "db": "news"}, {"role": "dbAdmin", "db": "news"}]
        admin.admin.command("createUser", "crawler", pwd="s3cr@t", roles=roles)
        admin.close()
    with EmbeddedMongo(tmp_path / "mongo", args=("--auth",)) as server:
        host = f"127.0.0.1:{server.port}"
        good = f"mongodb://crawler:s3cr%40t@{host}/?authSource=admin"
        store = open_store({"MONGO_URI": good, "MONGO_DATABASE": "news"})
        try:
            assert ensure_collections(store.db).applied  # creates, indexes, collMod: all allowed
            store.db.articles_rejected.insert_one({"_id": "x"})
            assert store.uri == f"mongodb://crawler:***@{host}/?authSource=admin"
        finally:
            store.close()
        bad = f"mongodb://crawler:hunter2@{host}/?authSource=admin"
        with pytest.raises(StorageUnavailable, match="refused the credentials") as info:
            open_store({"MONGO_URI": bad, "MONGO_CONNECT_TIMEOUT": 3})
        assert "hunter2" not in str(info.value)


def self_signed(tmp_path):
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def tls_server(tmp_path):
    """A SecantusDB server that speaks only TLS; yields (port, CA file)."""
    import subprocess

    from newscrawl.storage.embedded import find_executable, parse_listening_port

    cert_file, key_file = self_signed(tmp_path)
    log = tmp_path / "tls.log"
    executable = find_executable()
    assert executable is not None
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [executable, "--host", "127.0.0.1", "--port", "0", "--storage-path",
             str(tmp_path / "data"), "--tls-cert-file", str(cert_file),
             "--tls-key-file", str(key_file)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        port = None
        while port is None:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            port = parse_listening_port(log.read_text())
            time.sleep(0.05)
        yield port, cert_file
    finally:
        proc.terminate()
        proc.wait(30)


def test_tls_options_in_the_uri(tls_server):
    port, ca_file = tls_server
    uri = f"mongodb://127.0.0.1:{port}/?tls=true&tlsCAFile={ca_file}"
    store = open_store({"MONGO_URI": uri, "MONGO_DATABASE": "tls"})
    try:
        store.db.articles.insert_one({"_id": "over-tls"})
        assert store.db.articles.count_documents({}) == 1
    finally:
        store.close()
    # a client that does not trust the certificate is refused at start
    with pytest.raises(StorageUnavailable, match="certificate verify failed"):
        open_store({"MONGO_URI": f"mongodb://127.0.0.1:{port}/?tls=true",
                    "MONGO_CONNECT_TIMEOUT": 2})  # fmt: skip


def test_write_concern_from_the_uri_applies_when_the_settings_are_unset(mongo_uri):
    store = open_store({"MONGO_URI": f"{mongo_uri}?w=majority&journal=true"})
    try:
        assert store.db.write_concern.document == {"w": "majority", "j": True}
    finally:
        store.close()
    store = open_store({"MONGO_URI": f"{mongo_uri}?w=majority", "MONGO_WRITE_CONCERN_W": 1})
    try:
        assert store.db.write_concern.document == {"w": 1}  # the setting wins
    finally:
        store.close()
