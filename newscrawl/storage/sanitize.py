"""Making a scraped document safe to store, or saying why it cannot be.

Everything in an article comes from pages someone else wrote, so before a
document reaches MongoDB (or the journal) :func:`prepare` makes sure that:

- no key can act as an operator or a path: ``$``, ``.``, ``%`` and NUL in
  keys, at any depth, are percent-escaped (:func:`escape_key`, reversible
  with :func:`unescape_key`); values are never used as query operators (the
  store filters only on ``_id``, which must be a string);
- every value is a plain BSON value: nested dicts and lists (sets and tuples
  become lists), strings (lone surrogates replaced), 64-bit integers,
  floats, booleans, null, dates (aware UTC, milliseconds); anything else is
  refused, as is nesting deeper than :data:`MAX_DEPTH`;
- the fields the schema describes have its types (:func:`schema_problems`):
  a title that is a number is refused with a reason, not stored;
- the document fits: above ``max_bytes`` of BSON the largest strings and
  lists are cut (a string at a character boundary, a list by its last
  items) and the document is marked ``truncated: true`` with
  ``original_lengths`` (characters or items before the cut, per field); a
  document that still does not fit is refused.

Refusals raise :class:`Rejected`; the store records them in
``articles_rejected`` with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import bson

from newscrawl.storage.documents import STORE_FIELDS, Document, to_bson_datetime

#: BSON's own limit is 16 MiB; half leaves room for the unions an article
#: gathers later and for the archived copy of a previous version
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
#: a rejected document is kept for reading, not for restoring: smaller
REJECTED_MAX_BYTES = 1024 * 1024
#: MongoDB refuses documents nested deeper than 100 levels
MAX_DEPTH = 32
#: fields the store sets when it cut a document; never taken from an item
MARK_FIELDS = ("truncated", "original_lengths")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_ESCAPES = {"%": "%25", ".": "%2E", "$": "%24", "\x00": "%00"}
_ESCAPED = re.compile("[%.$\x00]")
_UNESCAPED = re.compile("%(25|2E|24|00)")
#: room kept under ``max_bytes`` when cutting, for the marks themselves
_MARGIN = 1024


class Rejected(ValueError):
    """The document cannot be stored; the message names the field and why."""


def escape_key(key: str) -> str:
    """``%``, ``.``, ``$`` and NUL percent-escaped: the key can no longer be an
    operator (``$where``) or a path (``a.b``), and nothing is lost.

    >>> escape_key("$where"), escape_key("a.b"), escape_key("50%"), escape_key("src")
    ('%24where', 'a%2Eb', '50%25', 'src')
    >>> unescape_key(escape_key("$a.b%2E\\x00")) == "$a.b%2E\\x00"
    True
    """
    return _ESCAPED.sub(lambda m: _ESCAPES[m.group()], key) if _ESCAPED.search(key) else key


def unescape_key(key: str) -> str:
    """The key :func:`escape_key` was given.

    >>> unescape_key("%24where"), unescape_key("a%2Eb"), unescape_key("50%25")
    ('$where', 'a.b', '50%')
    """
    return _UNESCAPED.sub(lambda m: chr(int(m.group(1), 16)), key) if "%" in key else key


#: escaped form of the keys met so far (the same few field names, mostly)
_KEYS: dict[str, str] = {}
_MAX_KEYS = 4096


def _safe_key(key: Any) -> str:
    """``key`` as a string, escaped (:func:`escape_key`), remembered.

    >>> _safe_key("$where"), _safe_key(3)
    ('%24where', '3')
    """
    name = escape_key(_text(key if type(key) is str else str(key)))
    if type(key) is str and len(_KEYS) < _MAX_KEYS:
        _KEYS[key] = name
    return name


def _text(value: str) -> str:
    """The string, with lone surrogates (not encodable as UTF-8) replaced."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", errors="replace").decode("utf-8")
    return value


def clean(value: Any, path: str = "", *, lenient: bool = False, _depth: int = 0) -> Any:
    """A copy of ``value`` made only of safe BSON values (see the module doc).
    Raises :class:`Rejected` naming the path of what cannot be stored; with
    ``lenient``, such values become their ``repr`` instead (for keeping a
    rejected document to read).

    >>> clean({"images": [{"src": "a.jpg", "$where": "1", "x.y": {3, 1}}]})
    {'images': [{'src': 'a.jpg', '%24where': '1', 'x%2Ey': [1, 3]}]}
    >>> clean({"n": 2**64})
    Traceback (most recent call last):
    ...
    newscrawl.storage.sanitize.Rejected: n: integer 18446744073709551616 is out of the 64-bit range
    >>> clean({"when": object()}, lenient=True)["when"].startswith("<object object")
    True
    """
    kind = type(value)
    if kind is str:
        return _text(value)
    is_mapping = kind is dict or (kind is not list and isinstance(value, Mapping))
    if is_mapping or kind is list or isinstance(value, tuple | set | frozenset):
        if _depth >= MAX_DEPTH:
            if lenient:
                return repr(value)[:1000]
            raise Rejected(f"{path or 'document'}: nested deeper than {MAX_DEPTH} levels")
        # the usual values (strings, lists of strings, None, booleans, floats,
        # dates) are handled inline: no call, no path string; keys seen before
        # are not escaped again
        if is_mapping:
            out: dict[str, Any] = {}
            for key, item in value.items():
                name = _KEYS.get(key) if type(key) is str else None
                if name is None:
                    name = _safe_key(key)
                kind_item = type(item)
                if kind_item is str:
                    out[name] = item if item.isascii() else _text(item)
                elif item is None or kind_item is bool or kind_item is float:
                    out[name] = item
                elif kind_item is list and _depth + 1 < MAX_DEPTH:
                    out[name] = [
                        (one if one.isascii() else _text(one))
                        if type(one) is str
                        else clean(
                            one,
                            f"{path}.{name}[{index}]" if path else f"{name}[{index}]",
                            lenient=lenient,
                            _depth=_depth + 2,
                        )
                        for index, one in enumerate(item)
                    ]
                elif kind_item is datetime:
                    out[name] = to_bson_datetime(item)
                else:
                    child = f"{path}.{name}" if path else name
                    out[name] = clean(item, child, lenient=lenient, _depth=_depth + 1)
            return out
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [
            (item if item.isascii() else _text(item))
            if type(item) is str
            else clean(item, f"{path}[{index}]", lenient=lenient, _depth=_depth + 1)
            for index, item in enumerate(items)
        ]
    if isinstance(value, str):
        return _text(value)
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return value
        if lenient:
            return str(value)
        raise Rejected(f"{path}: integer {value} is out of the 64-bit range")
    if isinstance(value, datetime):
        return to_bson_datetime(value)
    if lenient:
        return repr(value)[:10_000]
    what = "a date without a time" if isinstance(value, date) else kind.__name__
    raise Rejected(f"{path}: {what} is not a storable value: {repr(value)[:200]}")


# -- the schema's types --------------------------------------------------------

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "array": (list,),
    "object": (dict,),
    "date": (datetime,),
    "null": (type(None),),
    "bool": (bool,),
    "int": (int,),
    "long": (int,),
    "double": (float,),
    "number": (int, float),
}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Node:
    """One schema node, compiled once: the checks it makes, in order."""

    __slots__ = (
        "allow_bool",
        "enum",
        "items",
        "min_length",
        "minimum",
        "pattern",
        "properties",
        "required",
        "types",
        "wanted",
    )  # fmt: skip

    def __init__(self, node: Mapping[str, Any], skip_required: tuple[str, ...] = ()) -> None:
        bson_type = node.get("bsonType")
        names = [bson_type] if isinstance(bson_type, str) else list(bson_type or [])
        self.types: tuple[type, ...] | None = (
            tuple(t for name in names for t in _TYPES.get(name, ())) if bson_type else None
        )
        self.allow_bool = "bool" in names
        self.wanted = " or ".join(names)
        self.enum = node.get("enum")
        self.min_length: int = node.get("minLength", 0)
        self.pattern = re.compile(node["pattern"]) if "pattern" in node else None
        self.minimum = node.get("minimum")
        self.required = tuple(n for n in node.get("required", ()) if n not in skip_required)
        self.properties = {name: _Node(sub) for name, sub in node.get("properties", {}).items()}
        items = node.get("items")
        self.items = _Node(items) if isinstance(items, Mapping) else None

    def check(self, value: Any, path: str, out: list[str]) -> None:
        is_bool = isinstance(value, bool)
        if self.types is not None:
            if (is_bool and not self.allow_bool) or (
                not is_bool and not isinstance(value, self.types)
            ):
                kind = type(value).__name__
                out.append(f"{path}: expected {self.wanted}, got {kind} {_shown(value)}")
                return
        if self.enum is not None and value not in self.enum:
            out.append(f"{path}: {_shown(value)} is not one of {self.enum}")
        if type(value) is str:
            if len(value) < self.min_length:
                out.append(f"{path}: shorter than {self.min_length} characters")
            if self.pattern is not None and not self.pattern.search(value):
                out.append(f"{path}: {_shown(value)} does not match {self.pattern.pattern}")
        elif type(value) is dict:
            for name in self.required:
                if name not in value:
                    out.append(f"{path}.{name}: missing" if path else f"{name}: missing")
            for name, sub in self.properties.items():
                if name in value:
                    sub.check(value[name], f"{path}.{name}" if path else name, out)
        elif type(value) is list:
            if self.items is not None:
                for index, item in enumerate(value):
                    self.items.check(item, f"{path}[{index}]", out)
        elif self.minimum is not None and isinstance(value, int | float) and not is_bool:
            if value < self.minimum:
                out.append(f"{path}: {value} is below {self.minimum}")


_compiled: dict[tuple[int, tuple[str, ...]], tuple[Mapping[str, Any], _Node]] = {}


def schema_problems(
    doc: Mapping[str, Any], schema: Mapping[str, Any], skip_required: tuple[str, ...] = ()
) -> list[str]:
    """Where ``doc`` breaks ``schema`` (the subset of JSON Schema that
    ``article.schema.json`` uses: bsonType, enum, required, properties,
    items, minLength, pattern, minimum), one readable line per problem.
    Top-level ``required`` names in ``skip_required`` are not asked for. The
    schema is compiled once per schema object.

    >>> schema = {"bsonType": "object", "required": ["title", "version"],
    ...           "properties": {"title": {"bsonType": "string"},
    ...                          "kind": {"bsonType": "string", "enum": ["news"]},
    ...                          "tags": {"bsonType": "array", "items": {"bsonType": "string"}}}}
    >>> schema_problems({"title": 42, "kind": "rumour", "tags": ["a", None]}, schema, ("version",))
    ['title: expected string, got int 42', "kind: 'rumour' is not one of ['news']", 'tags[1]: expected string, got NoneType None']
    >>> schema_problems({"title": "T"}, schema)
    ['version: missing']
    """  # noqa: E501
    key = (id(schema), skip_required)
    cached = _compiled.get(key)
    if cached is None or cached[0] is not schema:
        cached = (schema, _Node(schema, skip_required))  # keeps schema alive: ids stay unique
        _compiled[key] = cached
    out: list[str] = []
    cached[1].check(doc, "", out)
    return out


# -- size -------------------------------------------------------------------


def bson_size(doc: Mapping[str, Any]) -> int:
    """Bytes of ``doc`` as BSON.

    >>> bson_size({"a": "xy"})  # 4 length + 1 type + 2 "a" + 4 + 3 "xy" + 1 end
    15
    """
    return len(bson.encode(doc))


def _cut_text(value: str, max_bytes: int) -> str:
    """The longest prefix of ``value`` within ``max_bytes`` of UTF-8, cut at a
    character boundary.

    >>> _cut_text("新闻正文", 7)
    '新闻'
    """
    return value.encode("utf-8")[: max(0, max_bytes)].decode("utf-8", errors="ignore")


def _cut_list(value: list[Any], max_bytes: int) -> list[Any]:
    out: list[Any] = []
    used = 5
    for item in value:
        used += bson_size({"0": item}) - 4
        if used > max_bytes:
            break
        out.append(item)
    return out


def bound_size(doc: Document, max_bytes: int = DEFAULT_MAX_BYTES) -> Document:
    """``doc`` when it fits in ``max_bytes`` of BSON; else a copy whose
    largest string and list fields are cut until it fits, marked
    ``truncated: true`` with ``original_lengths``. Raises :class:`Rejected`
    when cutting every such field is not enough.

    >>> doc = bound_size({"_id": "k", "title": "T", "body": "正" * 1000}, max_bytes=2048)
    >>> doc["truncated"], doc["original_lengths"], len(doc["body"]) < 1000, bson_size(doc) <= 2048
    (True, {'body': 1000}, True, True)
    >>> bound_size({"_id": "k", "body": "short"}) == {"_id": "k", "body": "short"}
    True
    """
    size = bson_size(doc)
    if size <= max_bytes:
        return doc
    original = size
    out = dict(doc)
    lengths: dict[str, int] = {}
    sizes = {
        name: bson_size({name: value})
        for name, value in doc.items()
        if name != "_id" and name not in MARK_FIELDS and isinstance(value, str | list)
    }
    for name in sorted(sizes, key=lambda n: sizes[n], reverse=True):
        value = out[name]
        keep = sizes[name] - (size - max_bytes) - _MARGIN
        cut = _cut_text(value, keep) if isinstance(value, str) else _cut_list(value, keep)
        lengths[name] = len(value)
        out[name] = cut
        out["truncated"] = True
        out["original_lengths"] = dict(lengths)
        size = bson_size(out)
        if size <= max_bytes:
            return out
    raise Rejected(
        f"document of {original} bytes does not fit in {max_bytes} bytes even with "
        f"{', '.join(sorted(lengths)) or 'nothing'} cut"
    )


# -- all together -----------------------------------------------------------


def prepare(
    doc: Mapping[str, Any],
    schema: Mapping[str, Any] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Document:
    """The document to store for the item document ``doc`` (from
    ``to_document``): cleaned, checked against ``schema`` (the store fields
    are the store's to add), cut to ``max_bytes``. Raises :class:`Rejected`.

    Not idempotent (keys are escaped again): prepare once, store or journal
    the result.

    >>> prepare({"_id": "k", "images": [{"src": "a", "$x": 1}], "truncated": "spoof"})
    {'_id': 'k', 'images': [{'src': 'a', '%24x': 1}]}
    >>> prepare({"_id": {"$ne": None}})
    Traceback (most recent call last):
    ...
    newscrawl.storage.sanitize.Rejected: _id must be a non-empty string, got {'$ne': None}
    """
    key = doc.get("_id")
    if not isinstance(key, str) or not key:
        raise Rejected(f"_id must be a non-empty string, got {_shown(key)}")
    cleaned: Document = clean({k: v for k, v in doc.items() if k not in MARK_FIELDS})
    if schema is not None:
        problems = schema_problems(cleaned, schema, skip_required=STORE_FIELDS)
        if problems:
            raise Rejected("; ".join(problems[:10]))
    return bound_size(cleaned, max_bytes)


def readable_copy(doc: Any, max_bytes: int = REJECTED_MAX_BYTES) -> Any:
    """What is kept of a rejected document: cleaned leniently (unstorable
    values as their repr) and cut to ``max_bytes``; its repr when even that
    fails.

    >>> readable_copy({"title": 42, "when": date(2024, 1, 1), "$bad": 1})
    {'title': 42, 'when': 'datetime.date(2024, 1, 1)', '%24bad': 1}
    """
    cleaned = clean(doc, lenient=True)
    if not isinstance(cleaned, dict):
        return cleaned
    try:
        return bound_size(cleaned, max_bytes)
    except Rejected:
        return repr(doc)[:10_000]
