"""The post files of the finews site: Jekyll front matter plus a Markdown/HTML body.

The publishing job of the real site writes each post as::

    ---
    layout: post
    title: "TITLE"
    date: 2022-02-18 10:01:44 +0800
    categories: dazhongribao
    tags: 大众日报新闻
    ---
    BODY

This module reads such a file into a :class:`Post` and writes one back in the
same shape, so the generator's posts look like the real ones (and a real
Jekyll would accept them). It also knows where Jekyll serves a post
(:func:`post_path`), since that depends only on the post.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

logger = logging.getLogger(__name__)

#: The site's timezone. Asia/Shanghai has had no daylight saving since 1991,
#: so a fixed offset is exact for every date the site can carry.
SHANGHAI = timezone(timedelta(hours=8), "CST")

#: article ids: NW + 18 digits (media news) or 18 digits (rolling news)
_ARTICLE_ID_RE = re.compile(r"^(?:NW)?\d{18}$")
#: a post file name: ``YYYY-MM-DD-<id>.md`` or ``undated-<id>.md``
_FILE_NAME_RE = re.compile(
    r"^(?:(?P<date>\d{4}-\d{2}-\d{2})|undated)?-(?P<id>.+)\.(?:md|markdown|html)$"
)
_DATE_RE = re.compile(
    r"^(?P<d>\d{4}-\d{2}-\d{2})"
    r"(?:[ T](?P<t>\d{1,2}:\d{2}(?::\d{2})?))?"
    r"\s*(?P<off>Z|[+-]\d{2}:?\d{2})?$"
)
_FRONT_KEYS = ("layout", "title", "date", "categories", "tags")


class PostFormatError(ValueError):
    """A post file without a front matter block."""


@dataclass
class Post:
    """One post file.

    ``date`` is aware (Asia/Shanghai) or None when the front matter's date is
    missing or broken (the real ``date:  +0800``); ``date_raw`` keeps what was
    written. ``categories`` and ``tags`` are the front matter's
    space-separated values split into lists, as Jekyll does. ``id`` is the
    file name's tail. ``body`` is everything after the front matter, byte for
    byte. ``file_name`` is the path relative to the posts folder (a post may
    live in a sub-folder, as Jekyll allows inside ``_posts``).
    """

    id: str
    title: str
    date: datetime | None
    date_raw: str
    categories: list[str]
    tags: list[str]
    body: str
    layout: str = "post"
    file_name: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    #: the front matter values as written (``a  b`` keeps its two spaces)
    categories_raw: str = ""
    tags_raw: str = ""

    @property
    def category(self) -> str:
        """The categories value as written: what the category page's file is named after."""
        if self.categories_raw and self.categories_raw.split() == self.categories:
            return self.categories_raw
        return " ".join(self.categories)

    @property
    def tag_text(self) -> str:
        """The tags value as written (a media name with a space gives two tags)."""
        if self.tags_raw and self.tags_raw.split() == self.tags:
            return self.tags_raw
        return " ".join(self.tags)

    @property
    def is_article(self) -> bool:
        """True when the id is an article id (news), False for site notices."""
        return is_article_id(self.id)


def is_article_id(value: str) -> bool:
    """Whether ``value`` is an article id: ``NW`` + 18 digits or 18 digits.

    >>> is_article_id("NW202202182281010830"), is_article_id("202112082206672930")
    (True, True)
    >>> is_article_id("init"), is_article_id("NW2022")
    (False, False)
    """
    return bool(_ARTICLE_ID_RE.match(value))


def id_date(post_id: str) -> date | None:
    """The date inside an id: the first 8 digits after an optional ``NW``.

    >>> id_date("NW202202182281010830")
    datetime.date(2022, 2, 18)
    >>> id_date("202205262391921712")
    datetime.date(2022, 5, 26)
    >>> id_date("init") is None
    True
    """
    m = re.match(r"^(?:NW)?(\d{4})(\d{2})(\d{2})\d", post_id)
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def parse_date(raw: str) -> datetime | None:
    """Read a front matter date; a date without offset is Asia/Shanghai.

    The result is aware and expressed in Asia/Shanghai (the site shows every
    time there). Empty or broken values give None.

    >>> parse_date("2022-02-18 10:01:44 +0800").isoformat()
    '2022-02-18T10:01:44+08:00'
    >>> parse_date("2021-12-01 13:33:50").isoformat()
    '2021-12-01T13:33:50+08:00'
    >>> parse_date("2022-02-18 02:01:44 +0000").isoformat()
    '2022-02-18T10:01:44+08:00'
    >>> parse_date("+0800") is None, parse_date("") is None
    (True, True)
    """
    m = _DATE_RE.match(raw.strip().strip('"').strip("'"))
    if not m:
        return None
    try:
        day = date.fromisoformat(m["d"])
        hms = [int(x) for x in (m["t"] or "0:00").split(":")] + [0]
        off = m["off"]
        tz: timezone = SHANGHAI
        if off and off != "Z":
            digits = off.replace(":", "")
            minutes = int(digits[1:3]) * 60 + int(digits[3:5])
            tz = timezone(timedelta(minutes=minutes if digits[0] == "+" else -minutes))
        elif off == "Z":
            tz = UTC
        value = datetime(day.year, day.month, day.day, hms[0], hms[1], hms[2], tzinfo=tz)
    except ValueError:
        return None
    return value.astimezone(SHANGHAI)


def format_date(value: datetime) -> str:
    """A date as the publishing job writes it (Shanghai time, ``+0800``).

    >>> format_date(datetime(2022, 2, 18, 2, 1, 44, tzinfo=timezone.utc))
    '2022-02-18 10:01:44 +0800'
    """
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S +0800")


def _unquote_yaml(value: str) -> str:
    """A YAML scalar as written on one line: double/single quoted or plain.

    >>> _unquote_yaml('"a \\\\"b\\\\" c"'), _unquote_yaml("'it''s'"), _unquote_yaml(" plain ")
    ('a "b" c', "it's", 'plain')
    """
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        return re.sub(r'\\(["\\/nt])', lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), inner)
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    return value


def _quote_yaml(value: str) -> str:
    """A string as a YAML double-quoted scalar (what Jekyll reads back).

    >>> _quote_yaml('“股王”茅台'), _quote_yaml('a "b"')
    ('"“股王”茅台"', '"a \\\\"b\\\\""')
    """
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_post(text: str, file_name: str = "") -> Post:
    """Parse a post file's text. ``file_name`` gives the id (its tail).

    >>> text = '---\\nlayout: post\\ntitle: ""\\ndate:  +0800\\ncategories: a B\\n'
    >>> p = parse_post(text + 'tags: 东财滚动新闻\\n---\\nbody', "undated-202205262391921712.md")
    >>> p.id, p.title, p.date, p.date_raw, p.categories, p.tags, p.body
    ('202205262391921712', '', None, '+0800', ['a', 'B'], ['东财滚动新闻'], 'body')
    """
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise PostFormatError(f"no front matter in post {file_name!r}")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise PostFormatError(f"unterminated front matter in post {file_name!r}") from None
    meta: dict[str, str] = {}
    for line in lines[1:end]:
        key, sep, value = line.partition(":")
        if sep and key.strip():
            meta[key.strip()] = value
    body = "\n".join(lines[end + 1 :])
    date_raw = meta.get("date", "").strip()
    categories_raw = _unquote_yaml(meta.get("categories", ""))
    tags_raw = _unquote_yaml(meta.get("tags", ""))
    base = Path(file_name).name
    m = _FILE_NAME_RE.match(base)
    post_id = m["id"] if m else Path(base).stem
    extra = {k: _unquote_yaml(v) for k, v in meta.items() if k not in _FRONT_KEYS}
    return Post(
        id=post_id,
        title=_unquote_yaml(meta.get("title", "")),
        date=parse_date(date_raw),
        date_raw=date_raw,
        categories=categories_raw.split(),
        tags=tags_raw.split(),
        body=body,
        layout=_unquote_yaml(meta.get("layout", "post")) or "post",
        file_name=file_name,
        extra=extra,
        categories_raw=categories_raw,
        tags_raw=tags_raw,
    )


def format_post(post: Post) -> str:
    """The post file's text, in the publishing job's shape.

    ``categories`` and ``tags`` are written space-separated on one line, the
    title double-quoted. A date that is only an offset (the job wrote
    ``"date: " + showtime + " +0800"`` with an empty showtime) keeps its two
    spaces, so the real posts round-trip byte for byte.

    >>> p = Post(id="x", title="T", date=None, date_raw="+0800", categories=["emnews"],
    ...          tags=["东财滚动新闻"], body="\\n> d")
    >>> print(format_post(p))
    ---
    layout: post
    title: "T"
    date:  +0800
    categories: emnews
    tags: 东财滚动新闻
    ---
    <BLANKLINE>
    > d
    """
    date_raw = post.date_raw
    if not date_raw and post.date is not None:
        date_raw = format_date(post.date)
    date_line = f"date:  {date_raw}" if date_raw.startswith(("+", "-")) else f"date: {date_raw}"
    head = [
        "---",
        f"layout: {post.layout}",
        f"title: {_quote_yaml(post.title)}",
        date_line.rstrip() if date_raw else "date:",
        f"categories: {post.category}",
        f"tags: {post.tag_text}",
    ]
    head += [f"{key}: {_quote_yaml(value)}" for key, value in post.extra.items()]
    head.append("---")
    return "\n".join(head) + "\n" + post.body


def post_file_name(post: Post) -> str:
    """The file name the publishing job gives a post: ``<date>-<id>.md``.

    Undated posts get ``undated-<id>.md`` (the real one was ``-<id>.md``).

    >>> post_file_name(parse_post("---\\ndate: 2022-02-18 10:01:44 +0800\\n---\\n", "-NW1.md"))
    '2022-02-18-NW1.md'
    """
    if post.date is None:
        return f"undated-{post.id}.md"
    return f"{post.date.strftime('%Y-%m-%d')}-{post.id}.md"


def read_post(path: Path, root: Path | None = None) -> Post:
    """Read one post file; ``file_name`` is relative to ``root`` when given."""
    name = path.relative_to(root).as_posix() if root is not None else path.name
    return parse_post(path.read_text(encoding="utf-8"), name)


def write_post(post: Post, folder: Path) -> Path:
    """Write ``post`` under ``folder`` (at ``post.file_name`` or its usual name)."""
    target = folder / (post.file_name or post_file_name(post))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(format_post(post), encoding="utf-8")
    return target


def load_posts(folder: Path) -> list[Post]:
    """Every post file under ``folder`` (recursively), in file name order.

    Markdown files that are not posts (no front matter, e.g. ``SAMPLES.md``)
    are skipped with a debug message.
    """
    posts: list[Post] = []
    for path in sorted(folder.rglob("*.md")):
        try:
            posts.append(read_post(path, folder))
        except PostFormatError as exc:
            logger.debug("skipping %s: %s", path, exc)
    return posts


def sample_posts_dir() -> Path:
    """The folder of real sample posts shipped with the package."""
    return Path(__file__).resolve().parent / "posts"


def post_date(post: Post) -> datetime:
    """The date Jekyll files the post under (Asia/Shanghai).

    The front matter's date; else the file name's date; else the id's date
    (an undated post is served under the date inside its id), at midnight.
    """
    if post.date is not None:
        return post.date
    m = _FILE_NAME_RE.match(Path(post.file_name).name)
    if m and m["date"]:
        day = date.fromisoformat(m["date"])
    else:
        day = id_date(post.id) or date(1970, 1, 1)
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)


def escape_path(path: str) -> str:
    """Percent-encode a URL path the way Jekyll does (keeps ``()`` and friends).

    >>> escape_path("/category/21shijijingjibaodao 21caijingAPP.html")
    '/category/21shijijingjibaodao%2021caijingAPP.html'
    >>> escape_path("/category/anxinguojizhengquan(xianggang).html")
    '/category/anxinguojizhengquan(xianggang).html'
    """
    return quote(path, safe="/!$&'()*+,;=:@-._~")


def post_path(post: Post) -> str:
    """The post's URL path, percent-encoded as it appears in links.

    Jekyll's default permalink: each category a path segment, downcased,
    duplicates dropped, then the date (in the site's timezone) and the id.

    >>> p = parse_post("---\\ndate: 2022-02-18 10:01:44 +0800\\n"
    ...                "categories: 21shijijingjibaodao 21caijingAPP\\n---\\n", "2022-02-18-NW1.md")
    >>> post_path(p)
    '/21shijijingjibaodao/21caijingapp/2022/02/18/NW1.html'
    """
    segments: list[str] = []
    for cat in post.categories:
        low = cat.lower()
        if low not in segments:
            segments.append(low)
    day = post_date(post).strftime("%Y/%m/%d")
    return escape_path("/" + "/".join([*segments, day, f"{post.id}.html"]))


def category_page_path(slug: str) -> str:
    """The URL path of a category page (percent-encoded).

    >>> category_page_path("21shijijingjibaodao  nancailicaitong")
    '/category/21shijijingjibaodao%20%20nancailicaitong.html'
    """
    return escape_path(f"/category/{slug}.html")


def folder_page_path(slug: str) -> str:
    """The URL path of the folder form of a category page (``/<slug>/``).

    >>> folder_page_path("emnews")
    '/emnews/'
    """
    return escape_path(f"/{slug}/")
