"""Shared fixtures.

Database: one MongoDB-wire server for the whole session, the embedded
SecantusDB in a temporary folder, or the real server named by the environment
variable ``MONGO_URI``; each test that asks gets a fresh database, dropped
after.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from newscrawl.storage.embedded import EmbeddedMongo

# -- database ---------------------------------------------------------------


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of the session's database server (``MONGO_URI`` or embedded)."""
    uri = os.environ.get("MONGO_URI")
    if uri:
        yield uri
        return
    server = EmbeddedMongo(tmp_path_factory.mktemp("mongo-session") / "mongo")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mongo_client(mongo_uri: str) -> Iterator[MongoClient[dict[str, Any]]]:
    """A client on the session's server (tz-aware, like the store's)."""
    client: MongoClient[dict[str, Any]] = MongoClient(
        mongo_uri, tz_aware=True, serverSelectionTimeoutMS=10_000
    )
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def mongo_db_name(mongo_client: MongoClient[dict[str, Any]]) -> Iterator[str]:
    """A database name no other test uses; the database is dropped after."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        mongo_client.drop_database(name)


@pytest.fixture
def mongo_db(
    mongo_client: MongoClient[dict[str, Any]], mongo_db_name: str
) -> Database[dict[str, Any]]:
    """The fresh database itself."""
    return mongo_client[mongo_db_name]


@pytest.fixture
def mongo_settings(mongo_uri: str, mongo_db_name: str, tmp_path: Path) -> dict[str, Any]:
    """Crawler settings that store into the fresh database (and keep any
    embedded data under ``tmp_path``)."""
    return {
        "MONGO_URI": mongo_uri,
        "MONGO_DATABASE": mongo_db_name,
        "NEWSCRAWL_DATA_DIR": str(tmp_path / ".newscrawl"),
    }
