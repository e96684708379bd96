"""Sources: which media an article comes from.

In order of trust: the source line ``（文章来源：大众日报）`` (its text
content: markup inside the name is joined), the trailing ``（央视新闻）`` /
``(央视新闻)`` of rolling news when it names a media (not a byline), and the
post's tag minus its ``新闻`` suffix (大众日报新闻 → 大众日报).
"""

from __future__ import annotations

import re

from newscrawl.extract.text import EDGE_SPACE

_SOURCE_LINE_RE = re.compile(
    r"^(?P<open>[（(]?)[\s\u3000\xa0]*(?:文章|新闻|稿件)?来源[\s\u3000\xa0]*[：:](?P<name>.{1,42})$"
)
_TRAILING_RE = re.compile(r"[（(](?P<name>[^（()）]{2,24})[)）][\s\u3000\xa0]*$")
#: what a media name may be made of (no sentence punctuation)
_NAME_CHARS_RE = re.compile(r"^[\u4e00-\u9fffA-Za-z0-9·&+\- ]+$")
#: a media name ends with one of these
MEDIA_SUFFIXES = (
    "新闻",
    "客户端",
    "报",
    "社",
    "网",
    "电视台",
    "电台",
    "频道",
    "周刊",
    "杂志",
    "财经",
    "资讯",
    "快讯",
    "传媒",
    "之声",
    "APP",
    "App",
)
#: media whose names end otherwise
MEDIA_NAMES = frozenset(
    "央视 央广 格隆汇 智通财经 中新经纬 华尔街见闻 券商中国 一财 界面 澎湃 财新 金十数据 "
    "21世纪经济报道 蓝鲸TMT 中国基金报 东方财富 东方财富网 新浪财经 路透 彭博 36氪 IT之家 "
    "TechWeb DoNews Wind 虎嗅 钛媒体".split()
)
#: names with a media suffix that are not media (年报, 互联网…)
_NOT_MEDIA_RE = re.compile(r"(?:[年季周月快简公通汇预战情]报|互联网|合作社|旅行社|出版社|\d+)$")
#: a tag is the media name plus this suffix
TAG_SUFFIX = "新闻"


def source_from_line(text: str) -> str | None:
    """The media of a source line, or None when the text is not one.

    >>> source_from_line("（文章来源：大众日报）")
    '大众日报'
    >>> source_from_line("（文章来源：上海证券报） ")
    '上海证券报'
    >>> source_from_line("（文章来源：安信国际证券(香港)）")
    '安信国际证券(香港)'
    >>> source_from_line("来源：新华社")
    '新华社'
    >>> source_from_line("图片来源：霍尼韦尔官网") is None
    True
    >>> source_from_line("（文章来源：）") is None
    True
    """
    match = _SOURCE_LINE_RE.match(text.strip(EDGE_SPACE))
    if match is None:
        return None
    name = match["name"]
    if match["open"] and name.endswith(("）", ")")):
        name = name[:-1]  # the line's own closing bracket; a name may hold brackets
    name = name.strip(EDGE_SPACE)
    return name or None


def is_media_name(name: str) -> bool:
    """Whether a parenthetical names a media: 央视新闻, 上海证券报, 新华社…

    >>> [is_media_name(x) for x in ("央视新闻", "央视新闻客户端", "上海证券报", "新华社")]
    [True, True, True, True]
    >>> [is_media_name(x) for x in ("完", "03301.HK", "记者 张三", "年报", "三季报", "新闻")]
    [False, False, False, False, False, False]
    """
    if not 2 <= len(name) <= 24 or not _NAME_CHARS_RE.match(name):
        return False
    if name in MEDIA_NAMES:
        return True
    if _NOT_MEDIA_RE.search(name) or " " in name:
        return False
    return any(name.endswith(suffix) and len(name) > len(suffix) for suffix in MEDIA_SUFFIXES)


def split_trailing_source(text: str) -> tuple[str, str | None]:
    """A trailing ``（媒体）`` cut from the end of a paragraph, as written.

    >>> split_trailing_source("累计打击恶意商标注册申请37.6万件。(央视新闻)")
    ('累计打击恶意商标注册申请37.6万件。', '央视新闻')
    >>> split_trailing_source("年均增长8.4%。（央视新闻客户端）")
    ('年均增长8.4%。', '央视新闻客户端')
    >>> split_trailing_source("为2018年以来最高水平。")
    ('为2018年以来最高水平。', None)
    >>> split_trailing_source("融信中国(03301.HK)")
    ('融信中国(03301.HK)', None)
    >>> split_trailing_source("（央视新闻）")
    ('', '央视新闻')
    """
    match = _TRAILING_RE.search(text)
    if match is None:
        return text, None
    name = match["name"].strip(EDGE_SPACE)
    if not is_media_name(name):
        return text, None
    return text[: match.start()].rstrip(EDGE_SPACE), name


def source_from_tag(tag: str) -> str | None:
    """The media a post tag names: the tag minus its ``新闻`` suffix, when it
    has one.

    >>> source_from_tag("大众日报新闻"), source_from_tag("东财滚动新闻")
    ('大众日报', '东财滚动')
    >>> source_from_tag("站长消息"), source_from_tag("新闻")
    (None, None)
    """
    tag = tag.strip(EDGE_SPACE)
    if not tag.endswith(TAG_SUFFIX):
        return None
    return tag[: -len(TAG_SUFFIX)].strip(EDGE_SPACE) or None
