"""Source lines, trailing media parentheticals and the tag fallback."""

from __future__ import annotations

import pytest

from newscrawl.extract.sources import (
    is_media_name,
    source_from_line,
    source_from_tag,
    split_trailing_source,
)


@pytest.mark.parametrize(
    ("line", "source"),
    [
        ("（文章来源：大众日报）", "大众日报"),
        ("(文章来源：大众日报)", "大众日报"),
        ("（文章来源: 上海证券报 ）", "上海证券报"),
        ("　（文章来源：中国证券报）　", "中国证券报"),
        ("来源：新华社", "新华社"),
        ("（来源：人民网）", "人民网"),
        ("（文章来源：安信国际证券(香港)）", "安信国际证券(香港)"),
        ("(文章来源：安信国际证券（香港）)", "安信国际证券（香港）"),
        ("来源：安信国际证券(香港)", "安信国际证券(香港)"),
    ],
)
def test_source_lines(line: str, source: str) -> None:
    assert source_from_line(line) == source


@pytest.mark.parametrize(
    "line",
    ["图片来源：霍尼韦尔官网", "（文章来源：）", "据霍尼韦尔官网消息", "（央视新闻）", ""],
)
def test_not_source_lines(line: str) -> None:
    assert source_from_line(line) is None


@pytest.mark.parametrize(
    ("text", "rest", "source"),
    [
        (
            "累计打击恶意商标注册申请37.6万件。(央视新闻)",
            "累计打击恶意商标注册申请37.6万件。",
            "央视新闻",
        ),
        ("年均增长8.4%。（央视新闻）", "年均增长8.4%。", "央视新闻"),
        ("年均增长8.4%。（央视新闻客户端）", "年均增长8.4%。", "央视新闻客户端"),
        ("汽车企业。（上海证券报） ", "汽车企业。", "上海证券报"),
        ("公告称。（新华社）", "公告称。", "新华社"),
        ("公告称。（券商中国）", "公告称。", "券商中国"),
        ("增长8.4%。（记者 王五）", "增长8.4%。（记者 王五）", None),
        ("融信中国(03301.HK)", "融信中国(03301.HK)", None),
        ("全文如下（完）", "全文如下（完）", None),
        ("详见公司（三季报）", "详见公司（三季报）", None),
        ("没有括号。", "没有括号。", None),
    ],
)
def test_trailing_source(text: str, rest: str, source: str | None) -> None:
    assert split_trailing_source(text) == (rest, source)


def test_media_names() -> None:
    assert is_media_name("央视新闻客户端")
    assert is_media_name("21世纪经济报道")
    assert not is_media_name("互联网")
    assert not is_media_name("中新社，北京")


@pytest.mark.parametrize(
    ("tag", "source"),
    [
        ("大众日报新闻", "大众日报"),
        ("东财滚动新闻", "东财滚动"),
        ("站长消息", None),
        ("新闻", None),
        ("", None),
    ],
)
def test_tag_fallback(tag: str, source: str | None) -> None:
    assert source_from_tag(tag) == source
