"""The stored article's schema, its MongoDB validator, collections and indexes.

``article.schema.json`` (next to this module) is the one description of a
stored article: downstream databases read it as JSON Schema, and
:func:`mongo_validator` turns it into the ``$jsonSchema`` validator of the
``articles`` collection, so the two cannot drift apart. Creating and
upgrading the collections is :mod:`newscrawl.storage.migrations`' job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.database import Database
from pymongo.errors import CollectionInvalid, OperationFailure

logger = logging.getLogger(__name__)

ARTICLES = "articles"
ARTICLE_VERSIONS = "article_versions"
#: documents that could not be stored, with the reason (see ``rejected.py``)
ARTICLES_REJECTED = "articles_rejected"
#: what the database is at: schema version, validator, migrations applied
META = "newscrawl_meta"
SCHEMA_FILE = Path(__file__).with_name("article.schema.json")

#: JSON Schema keywords MongoDB's ``$jsonSchema`` accepts (it rejects others,
#: e.g. ``$schema``, ``$id``, ``format``, ``examples``)
MONGO_KEYWORDS = frozenset(
    {
        "bsonType", "type", "enum", "required", "properties", "additionalProperties",
        "patternProperties", "dependencies", "items", "additionalItems", "minItems",
        "maxItems", "uniqueItems", "minLength", "maxLength", "pattern", "minimum", "maximum",
        "multipleOf", "minProperties", "maxProperties", "allOf", "anyOf", "oneOf", "not",
        "title", "description",
    }
)  # fmt: skip
_SUBSCHEMA = frozenset({"items", "additionalItems", "additionalProperties", "not"})
_SUBSCHEMA_MAPS = frozenset({"properties", "patternProperties"})
_SUBSCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf"})

#: unique ``info_code`` only where there is one (notices have null); the
#: ``updated_at`` index is :data:`EXPORT_INDEX`. Every index costs every write
#: of an article, so there is none that no query needs.
ARTICLE_INDEXES = [
    IndexModel(
        [("info_code", ASCENDING)],
        name="info_code_unique",
        unique=True,
        partialFilterExpression={"info_code": {"$type": "string"}},
    ),
    IndexModel([("published_at", ASCENDING)], name="published_at_1"),
    IndexModel([("categories", ASCENDING)], name="categories_1"),
]
#: exports page through articles in (updated_at, _id) order from a watermark;
#: a query on ``updated_at`` alone ("updated since T") uses it too (its prefix)
EXPORT_INDEX = IndexModel([("updated_at", ASCENDING), ("_id", ASCENDING)], name="updated_at_id")
#: indexes earlier versions created that no query uses: ``urls`` (nothing
#: looks an article up by URL) and ``updated_at`` alone (the prefix of
#: :data:`EXPORT_INDEX`); migration 3 drops them
UNUSED_ARTICLE_INDEXES = ("urls_1", "updated_at_1")
VERSION_INDEXES = [
    IndexModel(
        [("article_id", ASCENDING), ("version", ASCENDING)],
        name="article_id_version",
        unique=True,
    ),
]
REJECTED_INDEXES = [
    IndexModel([("rejected_at", ASCENDING)], name="rejected_at_1"),
    IndexModel([("article_id", ASCENDING)], name="article_id_1"),
]
VALIDATION = {"validationLevel": "strict", "validationAction": "error"}
_UNAUTHORIZED = 13
_NAMESPACE_EXISTS = 48


def load_schema(path: Path = SCHEMA_FILE) -> dict[str, Any]:
    """The article JSON Schema from ``article.schema.json``."""
    schema = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(schema, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return schema


def _mongo_schema(node: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in MONGO_KEYWORDS or (key == "type" and "bsonType" in node):
            continue
        if key in _SUBSCHEMA_MAPS:
            out[key] = {name: _mongo_schema(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA and isinstance(value, Mapping):
            out[key] = _mongo_schema(value)
        elif key in _SUBSCHEMA_LISTS or (key == "items" and isinstance(value, list)):
            out[key] = [_mongo_schema(sub) for sub in value]
        else:
            out[key] = value
    return out


def mongo_validator(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The ``validator`` option for ``create``/``collMod``: the schema with
    the keywords MongoDB does not accept removed, and ``type`` dropped where
    ``bsonType`` says it (the file keeps both: JSON readers use ``type``).

    >>> mongo_validator({
    ...     "$schema": "https://json-schema.org/draft/2020-12/schema",
    ...     "bsonType": "object", "type": "object", "required": ["d"],
    ...     "properties": {"d": {"bsonType": "date", "type": "string",
    ...                          "format": "date-time", "description": "when"}},
    ... })
    {'$jsonSchema': {'bsonType': 'object', 'required': ['d'], 'properties': {'d': {'bsonType': 'date', 'description': 'when'}}}}
    """  # noqa: E501
    return {"$jsonSchema": _mongo_schema(schema)}


def ensure_collections(db: Database[Any], schema: Mapping[str, Any] | None = None) -> None:
    """Bring the collections, indexes and validator up to date: see
    :func:`newscrawl.storage.migrations.ensure_collections`."""
    from newscrawl.storage.migrations import ensure_collections as migrate

    migrate(db, schema)


def create_collection(db: Database[Any], name: str, options: Mapping[str, Any]) -> bool:
    """Create the collection; False when it exists (another process just
    created it)."""
    try:
        db.create_collection(name, **options)
    except CollectionInvalid:
        return False
    except OperationFailure as exc:
        if exc.code != _NAMESPACE_EXISTS:
            raise
        return False
    return True


def update_validator(db: Database[Any], options: Mapping[str, Any]) -> bool:
    """Install the validator in ``options`` on ``articles`` (``collMod``);
    False (with a warning) when this user may not."""
    try:
        db.command("collMod", ARTICLES, **options)
    except OperationFailure as exc:
        if exc.code != _UNAUTHORIZED:
            raise
        logger.warning(
            "Cannot update the validator of %s.%s (%s); documents are checked against "
            "the old schema until a user with the dbAdmin role runs newscrawl once",
            db.name,
            ARTICLES,
            exc,
        )
        return False
    logger.info("Updated the validator of %s.%s", db.name, ARTICLES)
    return True
