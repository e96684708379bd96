"""Opening the database: one shared client per crawl process.

``open_store(settings)`` is what every component calls (the store pipeline,
run records, locks, the dedup index; in a crawl through
:func:`open_crawl_store`, which stops a crawl whose database cannot be used
after one connect timeout, not one per component). Components of one
process that name the same server share one :class:`pymongo.MongoClient`
(and one embedded server); each gets its own :class:`Store` handle and
closes it, and the client (and the embedded server) is closed when the last
handle is.

Settings read (all optional):

- ``MONGO_URI``: a MongoDB URI; auth and TLS options go in it. Empty: the
  environment variable ``MONGO_URI``; unset there too: the embedded server.
- ``MONGO_DATABASE`` (``"newscrawl"``): the database name.
- ``MONGO_CONNECT_TIMEOUT`` (10 seconds): how long to wait for the server at
  start before failing with :class:`StorageUnavailable`.
- ``MONGO_WRITE_CONCERN_W`` (unset): ``w`` for writes, an int or a tag such
  as ``"majority"``; 0 (unacknowledged) is refused.
- ``MONGO_WRITE_CONCERN_J`` (unset): ``j`` for writes, a bool.
  Unset, the URI's ``w=`` / ``journal=`` options apply, else the server's
  default.
- ``NEWSCRAWL_DATA_DIR`` (``".newscrawl"`` in the working directory): the
  embedded server keeps its data in ``<dir>/mongo``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError
from pymongo.write_concern import WriteConcern
from scrapy.settings import BaseSettings

from newscrawl.storage.embedded import EmbeddedMongo
from newscrawl.storage.errors import StorageUnavailable

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

DEFAULT_DATABASE = "newscrawl"
DEFAULT_DATA_DIR = ".newscrawl"
DEFAULT_CONNECT_TIMEOUT = 10.0
APP_NAME = "newscrawl"
_SECRET_PARAMS = ("password", "token", "secret", "authmechanismproperties")
_AUTHENTICATION_FAILED = 18

Document = dict[str, Any]


def redact_uri(uri: str) -> str:
    """The URI with its password (and secret query options) replaced by ``***``,
    for logs and error messages.

    >>> redact_uri("mongodb://crawler:s3cr%40t@db1:27017,db2/news?authSource=admin&tls=true")
    'mongodb://crawler:***@db1:27017,db2/news?authSource=admin&tls=true'
    >>> redact_uri("mongodb+srv://u:p@cluster.example.net/?tlsCertificateKeyFilePassword=x")
    'mongodb+srv://u:***@cluster.example.net/?tlsCertificateKeyFilePassword=***'
    >>> redact_uri("mongodb://127.0.0.1:27017/")
    'mongodb://127.0.0.1:27017/'
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return "***" if ":" in uri or "@" in uri else uri
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    netloc = f"{userinfo}{at}{hosts}"
    path, qmark, query = tail.partition("?")
    if qmark:
        parts = []
        for part in query.split("&"):
            name, eq, _ = part.partition("=")
            secret = eq and any(word in name.lower() for word in _SECRET_PARAMS)
            parts.append(f"{name}=***" if secret else part)
        query = "&".join(parts)
    return f"{scheme}://{netloc}{slash}{path}{qmark}{query}"


def _settings(settings: Mapping[str, Any]) -> BaseSettings:
    return settings if isinstance(settings, BaseSettings) else BaseSettings(dict(settings))


def resolve_mongo_uri(settings: Mapping[str, Any]) -> str | None:
    """The URI to use: the ``MONGO_URI`` setting, else the ``MONGO_URI``
    environment variable, else None (the embedded server).

    >>> resolve_mongo_uri({"MONGO_URI": "mongodb://db:27017/"})
    'mongodb://db:27017/'
    """
    value = _settings(settings).get("MONGO_URI")
    if value:
        return str(value)
    return os.environ.get("MONGO_URI") or None


def data_dir(settings: Mapping[str, Any]) -> Path:
    """``NEWSCRAWL_DATA_DIR`` (default ``.newscrawl``), absolute (relative
    to the working dir): the embedded database, journals, dedup snapshots.

    >>> data_dir({"NEWSCRAWL_DATA_DIR": "/srv/crawl"}).as_posix()
    '/srv/crawl'
    >>> data_dir({}) == Path(DEFAULT_DATA_DIR).absolute()
    True
    """
    return Path(_settings(settings).get("NEWSCRAWL_DATA_DIR") or DEFAULT_DATA_DIR).absolute()


def embedded_storage_path(settings: Mapping[str, Any]) -> Path:
    """``<NEWSCRAWL_DATA_DIR>/mongo``, absolute."""
    return data_dir(settings) / "mongo"


def write_concern_from_settings(settings: Mapping[str, Any]) -> WriteConcern:
    """``MONGO_WRITE_CONCERN_W`` / ``_J`` as a WriteConcern (unset = server default).

    >>> wc = write_concern_from_settings({"MONGO_WRITE_CONCERN_W": 2, "MONGO_WRITE_CONCERN_J": "1"})
    >>> wc.document == {"w": 2, "j": True}
    True
    >>> write_concern_from_settings({"MONGO_WRITE_CONCERN_W": "majority"}).document
    {'w': 'majority'}
    >>> write_concern_from_settings({}).is_server_default
    True
    """
    values = _settings(settings)
    w: int | str | None = None
    raw_w = values.get("MONGO_WRITE_CONCERN_W")
    if raw_w is not None and raw_w != "":
        w = int(raw_w) if str(raw_w).strip().isdigit() else str(raw_w)
    j = None
    if values.get("MONGO_WRITE_CONCERN_J") not in (None, ""):
        j = values.getbool("MONGO_WRITE_CONCERN_J")
    return WriteConcern(w=w, j=j)


@dataclass
class _Shared:
    """One client (and maybe one embedded server) and how many handles use it."""

    client: MongoClient[Document]
    uri: str
    embedded: EmbeddedMongo | None
    refs: int = 0


_registry: dict[str, _Shared] = {}
_registry_lock = threading.Lock()


@dataclass
class Store:
    """A handle on the shared client. ``db`` is ``MONGO_DATABASE`` with the
    configured write concern; ``uri`` is redacted (safe to log)."""

    client: MongoClient[Document]
    db: Database[Document]
    uri: str
    embedded: EmbeddedMongo | None
    _key: str = field(repr=False)
    _closed: bool = field(default=False, repr=False)

    @property
    def target_id(self) -> str:
        """A stable name for this server and database, safe to show (a hash
        of the redacted URI, or of the embedded data path, and the database):
        local state kept for them (the journal) goes under it."""
        basis = self._key if self.embedded is not None else self.uri
        return hashlib.sha1(f"{basis}\x00{self.db.name}".encode()).hexdigest()[:16]

    def close(self) -> None:
        """Release this handle; the last one closes the client and stops the
        embedded server. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        _release(self._key)


def open_store(settings: Mapping[str, Any]) -> Store:
    """Connect (or join this process's connection) and check the server
    answers. Raises StorageUnavailable naming the redacted URI and the cause,
    within ``MONGO_CONNECT_TIMEOUT`` seconds."""
    values = _settings(settings)
    uri = resolve_mongo_uri(values)
    timeout = values.getfloat("MONGO_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT)
    database = values.get("MONGO_DATABASE") or DEFAULT_DATABASE
    write_concern = write_concern_from_settings(values)
    key = uri if uri is not None else f"embedded:{embedded_storage_path(values)}"
    with _registry_lock:
        shared = _registry.get(key)
        if shared is None:
            shared = _connect(uri, embedded_storage_path(values), timeout)
            _registry[key] = shared
        shared.refs += 1
    # unset settings: the URI's own w / journal options (or the server's default) apply
    db = shared.client.get_database(
        str(database), write_concern=None if write_concern.is_server_default else write_concern
    )
    if not db.write_concern.acknowledged:
        _release(key)
        raise StorageUnavailable(
            f"write concern {db.write_concern.document} at {shared.uri} is unacknowledged: "
            "the store could not tell a stored article from a lost one; use w >= 1"
        )
    return Store(client=shared.client, db=db, uri=shared.uri, embedded=shared.embedded, _key=key)


#: the stat that says why a crawl's database could not be used (the summary prints
#: it): set by whichever component met it first, the store pipeline included
ERROR_STAT = "newscrawl/store/error"
#: per crawl: one open at a time, and why the database could not be used
_crawl_opens: weakref.WeakKeyDictionary[Crawler, asyncio.Lock] = weakref.WeakKeyDictionary()
_crawl_failures: weakref.WeakKeyDictionary[Crawler, StorageUnavailable] = (
    weakref.WeakKeyDictionary()
)


async def open_crawl_store(crawler: Crawler) -> Store:
    """:func:`open_store` with the crawl's settings, off the reactor thread, for
    a component of that crawl. The crawl's components open one at a time (the
    first connects, the others join its client); once one found the database
    unusable, the others get the same error at once, and :data:`ERROR_STAT`
    says why. A crawl whose MongoDB cannot be reached so stops after one
    ``MONGO_CONNECT_TIMEOUT``, not after one per component (five open it)."""
    from scrapy.utils.asyncio import run_in_thread

    lock = _crawl_opens.setdefault(crawler, asyncio.Lock())
    async with lock:
        failed = _crawl_failures.get(crawler)
        if failed is not None:
            raise StorageUnavailable(str(failed))
        try:
            return await run_in_thread(open_store, crawler.settings)
        except StorageUnavailable as exc:
            _crawl_failures[crawler] = exc
            if crawler.stats is not None and not crawler.stats.get_value(ERROR_STAT):
                crawler.stats.set_value(ERROR_STAT, str(exc))
            raise


def _connect(uri: str | None, storage_path: Path, timeout: float) -> _Shared:
    embedded = None
    if uri is None:
        embedded = EmbeddedMongo(storage_path)
        uri = embedded.start()  # raises EmbeddedMongoError (a StorageUnavailable)
    shown = redact_uri(uri)
    try:
        client = _client(uri, timeout)
    except (ConfigurationError, ValueError, TypeError) as exc:
        _stop(embedded)
        raise StorageUnavailable(f"invalid MongoDB URI {shown}: {_scrub(exc, uri)}") from exc
    try:
        client.admin.command("ping")
    except OperationFailure as exc:
        client.close()
        _stop(embedded)
        if exc.code != _AUTHENTICATION_FAILED:
            raise StorageUnavailable(f"MongoDB at {shown} refused: {_scrub(exc, uri)}") from exc
        raise StorageUnavailable(
            f"MongoDB at {shown} refused the credentials in the URI: {_scrub(exc, uri)}"
        ) from exc
    except PyMongoError as exc:
        client.close()
        _stop(embedded)
        raise StorageUnavailable(
            f"cannot reach MongoDB at {shown} within {timeout:g}s: {_scrub(exc, uri)}"
        ) from exc
    logger.info("Connected to MongoDB at %s%s", shown, " (embedded)" if embedded else "")
    return _Shared(client=client, uri=shown, embedded=embedded)


def _client(uri: str, timeout: float) -> MongoClient[Document]:
    millis = max(1, int(timeout * 1000))
    return MongoClient(
        uri,
        appname=APP_NAME,
        tz_aware=True,
        serverSelectionTimeoutMS=millis,
        connectTimeoutMS=millis,
        connect=False,
    )


def _scrub(exc: BaseException, uri: str) -> str:
    """The exception text with the URI's password taken out, just in case."""
    text = str(exc) or type(exc).__name__
    netloc = uri.partition("://")[2].partition("/")[0]
    userinfo = netloc.rpartition("@")[0]
    password = userinfo.partition(":")[2]
    return text.replace(password, "***") if password else text


def _stop(embedded: EmbeddedMongo | None) -> None:
    if embedded is not None:
        embedded.stop()


def _release(key: str) -> None:
    with _registry_lock:
        shared = _registry.get(key)
        if shared is None:
            return
        shared.refs -= 1
        if shared.refs > 0:
            return
        del _registry[key]
    shared.client.close()
    _stop(shared.embedded)
    logger.info("Closed MongoDB connection to %s", shared.uri)
