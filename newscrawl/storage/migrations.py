"""Bringing a database up to what this code expects: numbered migrations and
the validator, recorded in the database itself.

The document ``{_id: "schema"}`` of ``newscrawl_meta`` says where a database
is::

    {_id: "schema", version: 2,                  # last migration applied
     validator_sha1: "…",                        # the $jsonSchema installed
     validators: ["…", "…"],                     # every one installed, in order
     applied: [{version, description, at}, …],   # history
     updated_at: …}

:func:`ensure_collections` runs at every start (from every process, maybe
several at once) and

- applies the migrations newer than ``version``, in order; each one is
  idempotent (creating what exists is a no-op), so two processes racing
  through the same step do no harm;
- installs the validator built from ``article.schema.json`` when its sha1 is
  not the one recorded: a schema change reaches the database on the next
  start, with no step to write by hand;
- changes nothing when the database is *newer* than this code (a higher
  ``version``, or a validator installed after this code's one): an old
  crawler left running must not undo an upgrade.

When up to date, a start costs one ``find`` on ``newscrawl_meta``.

A new migration is a function of the database added to :data:`MIGRATIONS`
with the next number; data changes go there too (e.g. filling a new required
field in stored documents before the validator that requires it).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database
from pymongo.errors import OperationFailure

from newscrawl.storage.schema import (
    ARTICLE_INDEXES,
    ARTICLE_VERSIONS,
    ARTICLES,
    ARTICLES_REJECTED,
    EXPORT_INDEX,
    META,
    REJECTED_INDEXES,
    UNUSED_ARTICLE_INDEXES,
    VALIDATION,
    VERSION_INDEXES,
    create_collection,
    load_schema,
    mongo_validator,
    update_validator,
)

logger = logging.getLogger(__name__)

SCHEMA_DOC = "schema"
_INDEX_NOT_FOUND = 27


@dataclass(frozen=True)
class Migration:
    """One numbered, idempotent step."""

    version: int
    description: str
    apply: Callable[[Database[Any], Mapping[str, Any]], None]


def _v1_articles(db: Database[Any], options: Mapping[str, Any]) -> None:
    if create_collection(db, ARTICLES, options):
        logger.info("Created collection %s.%s", db.name, ARTICLES)
    create_collection(db, ARTICLE_VERSIONS, {})
    db[ARTICLES].create_indexes(ARTICLE_INDEXES)
    db[ARTICLE_VERSIONS].create_indexes(VERSION_INDEXES)


def _v2_rejected_and_export(db: Database[Any], options: Mapping[str, Any]) -> None:
    if create_collection(db, ARTICLES_REJECTED, {}):
        logger.info("Created collection %s.%s", db.name, ARTICLES_REJECTED)
    db[ARTICLES_REJECTED].create_indexes(REJECTED_INDEXES)
    db[ARTICLES].create_indexes([EXPORT_INDEX])


def _v3_drop_unused_indexes(db: Database[Any], options: Mapping[str, Any]) -> None:
    existing = {index["name"] for index in db[ARTICLES].list_indexes()}
    for name in UNUSED_ARTICLE_INDEXES:
        if name not in existing:
            continue
        try:
            db[ARTICLES].drop_index(name)
        except OperationFailure as exc:
            if exc.code != _INDEX_NOT_FOUND:  # another process dropped it first
                raise
        logger.info("Dropped index %s of %s.%s (no query uses it)", name, db.name, ARTICLES)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "articles (with the validator), article_versions, their indexes", _v1_articles),
    Migration(
        2,
        "articles_rejected; (updated_at, _id) index for export watermarks",
        _v2_rejected_and_export,
    ),
    Migration(
        3,
        "articles: drop the indexes no query uses (urls_1; updated_at_1, a prefix of "
        "updated_at_id): each one cost every write",
        _v3_drop_unused_indexes,
    ),
)
LATEST = MIGRATIONS[-1].version


def validator_sha1(options: Mapping[str, Any]) -> str:
    """sha1 (hex) of the collection options holding the validator; key order
    does not matter.

    >>> validator_sha1({"a": 1, "b": [2]}) == validator_sha1({"b": [2], "a": 1})
    True
    """
    text = json.dumps(options, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


@dataclass
class SchemaState:
    """What :func:`ensure_collections` found and did."""

    version: int
    validator_sha1: str | None
    applied: list[int]
    validator_updated: bool
    #: the database is ahead of this code: left as it is
    newer: bool = False


def ensure_collections(db: Database[Any], schema: Mapping[str, Any] | None = None) -> SchemaState:
    """Apply pending migrations and install a changed validator (see the
    module doc). Safe to call on every start and from several processes."""
    options = {"validator": mongo_validator(schema or load_schema()), **VALIDATION}
    digest = validator_sha1(options)
    meta = db[META].find_one({"_id": SCHEMA_DOC}) or {}
    version = int(meta.get("version") or 0)
    installed: list[str] = list(meta.get("validators") or [])
    state = SchemaState(version, meta.get("validator_sha1"), [], False)
    if version > LATEST:
        logger.warning(
            "Database %s is at schema version %d, newer than this newscrawl's %d: leaving it "
            "as it is; upgrade newscrawl",
            db.name,
            version,
            LATEST,
        )
        state.newer = True
        return state
    for migration in MIGRATIONS:
        if migration.version <= version:
            continue
        migration.apply(db, options)
        now = datetime.now(tz=UTC)
        db[META].update_one(
            {"_id": SCHEMA_DOC},
            {
                "$max": {"version": migration.version},
                "$push": {
                    "applied": {
                        "version": migration.version,
                        "description": migration.description,
                        "at": now,
                    }
                },
                "$set": {"updated_at": now},
            },
            upsert=True,
        )
        logger.info(
            "Database %s: applied migration %d (%s)", db.name, migration.version,
            migration.description,
        )  # fmt: skip
        state.applied.append(migration.version)
        state.version = migration.version
    if state.validator_sha1 == digest:
        return state
    if digest in installed:
        logger.warning(
            "Database %s has a newer article validator (sha1 %s) than this newscrawl's (%s): "
            "leaving it; upgrade newscrawl",
            db.name,
            state.validator_sha1,
            digest,
        )
        state.newer = True
        return state
    if not _validator_in_place(db, options) and not update_validator(db, options):
        return state
    db[META].update_one(
        {"_id": SCHEMA_DOC},
        {
            "$set": {"validator_sha1": digest, "updated_at": datetime.now(tz=UTC)},
            "$push": {"validators": digest},
        },
        upsert=True,
    )
    logger.info("Database %s: article validator is now sha1 %s", db.name, digest)
    state.validator_sha1 = digest
    state.validator_updated = True
    return state


def _validator_in_place(db: Database[Any], options: Mapping[str, Any]) -> bool:
    """True when ``articles`` already has exactly these options (just created)."""
    infos = list(db.list_collections(filter={"name": ARTICLES}))
    current = infos[0].get("options", {}) if infos else {}
    return all(current.get(name) == value for name, value in options.items())
