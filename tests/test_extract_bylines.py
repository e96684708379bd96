"""Byline parsing: every form SITE.md lists, spacing variants, and what is not a byline."""

from __future__ import annotations

import pytest

from newscrawl.extract.bylines import (
    is_byline,
    parse_byline,
    parse_dateline,
    split_names,
    split_trailing_byline,
)


@pytest.mark.parametrize(
    ("text", "authors", "correspondents", "others"),
    [
        ("□ 本报记者张环泽 ", ["张环泽"], [], []),
        ("本报通讯员赵峰顿星亮", [], ["赵峰", "顿星亮"], []),
        ("本报记者 张三", ["张三"], [], []),
        ("本报记者　张三 李四", ["张三", "李四"], [], []),
        ("本报记者\xa0张三\u3000李四", ["张三", "李四"], [], []),
        ("记者张三 通讯员李四", ["张三"], ["李四"], []),
        ("记者 张三 李四", ["张三", "李四"], [], []),
        ("本报记者 张三 通讯员 李四", ["张三"], ["李四"], []),
        ("本报记者张三 本报通讯员李四王五", ["张三"], ["李四", "王五"], []),
        ("■ 本报记者 王五 实习生 赵六", ["王五"], [], ["赵六"]),
        ("■本报记者王五　实习生赵六", ["王五"], [], ["赵六"]),
        ("文/记者 陈七", ["陈七"], [], []),
        ("文/本报记者 陈七 刘八", ["陈七", "刘八"], [], []),
        ("文｜记者 陈七", ["陈七"], [], []),
        ("新华社北京2月18日电（记者 刘八、孙九）", ["刘八", "孙九"], [], []),
        ("新华社北京2月18日电(记者刘八 孙九)", ["刘八", "孙九"], [], []),
        ("（记者 周十）", ["周十"], [], []),
        ("(记者 周十 通讯员 吴一)", ["周十"], ["吴一"], []),
        ("本报记者 张 三", ["张三"], [], []),
        ("本报记者 欧阳明月 司马光", ["欧阳明月", "司马光"], [], []),
        ("本报记者 诸葛亮上官婉儿", ["诸葛亮", "上官婉儿"], [], []),
        ("本报记者 王五 北京报道", ["王五"], [], []),
        ("记者 王五 摄", ["王五"], [], []),
        ("责任编辑：王五", [], [], ["王五"]),
        ("编辑 王五", [], [], ["王五"]),
        ("本报特约记者 钱二", ["钱二"], [], []),
        ("见习记者 孙三", ["孙三"], [], []),
        ("实习记者 孙三", [], [], ["孙三"]),
    ],
)
def test_byline_forms(
    text: str, authors: list[str], correspondents: list[str], others: list[str]
) -> None:
    byline = parse_byline(text)
    assert byline is not None, text
    assert (byline.authors, byline.correspondents, byline.others) == (
        authors,
        correspondents,
        others,
    )
    assert is_byline(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "　",
        "记者今天从国家知识产权局第四季度例行新闻发布会上了解到，今年以来。",
        "据记者了解，作为第四代制冷剂，HFO-1234yf制冷剂产品GWP小于1",
        "记者从海关总署广东分署获悉",
        "记者手记",
        "深入一线，倾听企声找“痛点”",
        "精准监督，深挖症结破“堵点”",
        "“以前，我手机里面有10多个微信工作群。”",
        "（文章来源：大众日报）",
        "（央视新闻）",
        "记者",
        "本报记者",
        "新华社北京2月18日电（记者 刘八、孙九）国务院日前印发通知。",
        "本报记者 Zhang San",
        "记者" + "张三" * 50,
    ],
)
def test_not_bylines(text: str) -> None:
    assert parse_byline(text) is None
    assert not is_byline(text)


@pytest.mark.parametrize(
    ("run", "names"),
    [
        ("赵峰顿星亮", ["赵峰", "顿星亮"]),
        ("张环泽", ["张环泽"]),
        ("张三", ["张三"]),
        ("张三李四", ["张三", "李四"]),
        ("张三李四王五", ["张三", "李四", "王五"]),
        ("欧阳明月", ["欧阳明月"]),
        ("欧阳明", ["欧阳明"]),
        ("王伟欧阳明", ["王伟", "欧阳明"]),
        ("司马光诸葛亮", ["司马光", "诸葛亮"]),
        ("上官婉儿张三", ["上官婉儿", "张三"]),
        ("李明华张伟", ["李明华", "张伟"]),
    ],
)
def test_split_names(run: str, names: list[str]) -> None:
    assert split_names(run) == names


@pytest.mark.parametrize("run", ["王明文华强", "阿不都热依木", "一二三四五六", "张" * 20])
def test_split_names_ambiguous_keeps_the_run(run: str) -> None:
    assert split_names(run) == [run]


@pytest.mark.parametrize(
    "run", ["赵峰顿星亮", "张三李四王五", "王明文华强", "司马光诸葛亮", "欧阳明月", "甲乙丙丁戊"]
)
def test_split_names_never_loses_characters(run: str) -> None:
    assert "".join(split_names(run)) == run


def test_dateline_keeps_the_lead() -> None:
    lead = "新华社北京2月18日电（记者 刘八、孙九）国务院日前印发通知。"
    byline, text = parse_dateline(lead)
    assert byline is not None and byline.authors == ["刘八", "孙九"]
    assert text == lead
    assert parse_dateline("融信中国(03301.HK)：自二零二一年") == (
        None,
        "融信中国(03301.HK)：自二零二一年",
    )
    assert parse_dateline("国家电网（集团）公司")[0] is None


def test_trailing_byline() -> None:
    text, byline = split_trailing_byline("年均增长8.4%。（记者 王五）")
    assert text == "年均增长8.4%。"
    assert byline is not None and byline.authors == ["王五"]
    assert split_trailing_byline("为最高水平。(央视新闻)") == ("为最高水平。(央视新闻)", None)
    assert split_trailing_byline("（张三）") == ("（张三）", None)
