"""The share JSON (``/NewsData/GetNewsText.do?id=<code>``) and how it completes a post.

The JSON's ``text`` (older: ``content``) is the article body as HTML, in the
same markup as a post body; ``title``, ``showtime`` and ``mediaName`` are
optional and modelled, so nothing depends on them being there.
``merge_share`` applies every fallback a post may need, with or without a
share JSON: full text for digest-only or truncated posts, the title from the
share JSON / digest / body, the date from the share JSON / the id.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from parsel import Selector

from newscrawl.extract.body import extract_body
from newscrawl.extract.dates import date_from_id, parse_showtime
from newscrawl.extract.pages import EMPTY, INVALID_JSON, MAX_PAGE_CHARS, NO_TEXT, TOO_LARGE
from newscrawl.extract.post import (
    FROM_INFO_CODE,
    FROM_SHARE_JSON,
    SOURCE_SHARE,
    SOURCE_TAG,
    PostFields,
    make_summary,
)
from newscrawl.extract.text import clean_lines, first_sentence, strip_final_punct
from newscrawl.sites.finews import HOME_URL

logger = logging.getLogger(__name__)

#: body keys, newest first
BODY_KEYS = ("text", "content")
#: keys an answer may be wrapped in (``{"data": {...}}``)
WRAPPER_KEYS = ("data", "Data", "result", "Result")
TITLE = "title"
PUBLISHED_AT = "published_at"


@dataclass
class ShareFields:
    """What a share JSON says; the body fields are read from its HTML."""

    html: str = ""
    title: str | None = None
    showtime: str | None = None  # as sent (a number is kept as its string)
    published_at: datetime | None = None  # showtime as aware UTC
    media_name: str | None = None
    body: str = ""
    digest: str = ""
    images: list[dict[str, str | None]] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    correspondents: list[str] = field(default_factory=list)
    source: str | None = None  # from the body's source line / trailing （媒体）
    outlinks: list[str] = field(default_factory=list)


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def _string(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(clean_lines(value))
    return text or None


def _unwrap(obj: Any) -> dict[str, Any] | None:
    if not isinstance(obj, dict):
        return None
    if any(key in obj for key in (*BODY_KEYS, TITLE)):
        return obj
    for key in WRAPPER_KEYS:
        inner = obj.get(key)
        if isinstance(inner, dict):
            return inner
    return obj


def parse_share_json(data: bytes | str) -> ShareFields | None:
    """The fields of a share JSON answer; ``None`` when it is not JSON, not an
    object, or has neither a body, a title nor a time.

    >>> share = parse_share_json(
    ...     '{"text": "<p>本报记者 张三</p><p>正文第一句。第二句。</p>", "title": " 标题 "}'
    ... )
    >>> share.body, share.authors, share.title
    ('正文第一句。第二句。', ['张三'], '标题')
    >>> old = parse_share_json(b'{"content": "<p>older</p>", "showtime": "2022-02-18 10:01:44"}')
    >>> old.body, old.published_at
    ('older', datetime.datetime(2022, 2, 18, 2, 1, 44, tzinfo=datetime.timezone.utc))
    >>> parse_share_json("not json"), parse_share_json("[1, 2]"), parse_share_json('{"text": 5}')
    (None, None, None)
    """
    if len(data) > MAX_PAGE_CHARS:
        logger.debug("Share answer too large (%d)", len(data))
        return None
    try:
        obj = _unwrap(json.loads(_decode(data)))
    except (ValueError, RecursionError):
        logger.debug("Share answer is not JSON")
        return None
    if obj is None:
        return None
    html = next((v for k in BODY_KEYS if isinstance(v := obj.get(k), str) and v.strip()), "")
    showtime_raw = obj.get("showtime")
    share = ShareFields(
        html=html,
        title=_string(obj.get(TITLE)),
        showtime=showtime_raw if isinstance(showtime_raw, str) else None,
        published_at=parse_showtime(showtime_raw),
        media_name=_string(obj.get("mediaName")),
    )
    if isinstance(showtime_raw, int | float) and not isinstance(showtime_raw, bool):
        share.showtime = str(showtime_raw)
    if not html and share.title is None and share.published_at is None:
        return None
    if html:
        _read_body(share)
    return share


def classify_bad_share(data: bytes | str) -> str | None:
    """Why a share answer gives nothing (a stats key ``newscrawl/share/<reason>``),
    or None when :func:`parse_share_json` reads it.

    >>> classify_bad_share(b""), classify_bad_share(b"<html>502</html>"), classify_bad_share("{}")
    ('empty', 'invalid_json', 'no_text')
    >>> classify_bad_share('{"text": "<p>x</p>"}') is None
    True
    """
    if not data or not data.strip():
        return EMPTY
    if len(data) > MAX_PAGE_CHARS:
        return TOO_LARGE
    try:
        json.loads(_decode(data))
    except (ValueError, RecursionError):
        return INVALID_JSON
    return NO_TEXT if parse_share_json(data) is None else None


def _read_body(share: ShareFields) -> None:
    try:
        root = Selector(text=share.html).root
    except ValueError:
        logger.debug("Share body is not HTML")
        return
    if root is None or not isinstance(root.tag, str):
        return
    container = root.find("body")
    fields = extract_body(container if container is not None else root, HOME_URL)
    share.body = fields.body
    share.digest = "\n".join(fields.digest)
    share.images = fields.images
    share.authors = fields.byline.authors
    share.correspondents = fields.byline.correspondents
    share.source = fields.source or fields.trailing_source or fields.digest_source
    share.outlinks = fields.outlinks


def merge_share(post: PostFields, share: ShareFields | None) -> PostFields:
    """The post completed by its share JSON (or by its id alone when ``share``
    is None). The post is not changed; a new PostFields is returned.

    - body: the share body when the post body is empty or shorter (and then
      the share's images when the post has none); the summary follows;
    - authors / correspondents / source: the share's fill what the post lacks
      (a source read only from the tag counts as lacking);
    - title: when empty, the share title, else the digest's first sentence,
      else the body's, without final punctuation (``derived_fields`` gets
      ``"title"``);
    - published_at: when the page has none, the share ``showtime``
      (``share_json``), else the id's date at 00:00 Asia/Shanghai
      (``info_code``); ``derived_fields`` gets ``"published_at"``.
    """
    out = replace(
        post,
        derived_fields=list(post.derived_fields),
        authors=list(post.authors),
        correspondents=list(post.correspondents),
        images=[dict(image) for image in post.images],
        outlinks=list(post.outlinks),
    )
    if share is not None:
        _merge_body(out, share)
    out.summary = make_summary(out.digest, out.body)
    if not out.title:
        title = share.title if share is not None and share.title else None
        if title is None:
            title = strip_final_punct(first_sentence(out.digest) or first_sentence(out.body))
        if title:
            out.title = title
            _derived(out, TITLE)
    if out.published_at is None:
        if share is not None and share.published_at is not None:
            out.published_at, out.published_at_source = share.published_at, FROM_SHARE_JSON
        else:
            date = date_from_id(out.post_id)
            if date is not None:
                out.published_at, out.published_at_source = date, FROM_INFO_CODE
        if out.published_at is not None:
            _derived(out, PUBLISHED_AT)
    return out


def _merge_body(out: PostFields, share: ShareFields) -> None:
    if share.body and len(out.body) < len(share.body):
        out.body = share.body
        if not out.images:
            out.images = [dict(image) for image in share.images]
        if not out.digest and share.digest:
            out.digest = share.digest
    if not out.authors:
        out.authors = list(share.authors)
    if not out.correspondents:
        out.correspondents = list(share.correspondents)
    if share.source and (out.source is None or out.source_origin == SOURCE_TAG):
        out.source, out.source_origin = share.source, SOURCE_SHARE
    elif out.source is None and share.media_name:
        out.source, out.source_origin = share.media_name, SOURCE_SHARE
    out.outlinks.extend(url for url in share.outlinks if url not in out.outlinks)


def _derived(out: PostFields, name: str) -> None:
    if name not in out.derived_fields:
        out.derived_fields.append(name)
