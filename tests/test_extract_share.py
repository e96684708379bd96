"""parse_share_json and merge_share: keys, odd answers, and every fallback rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from newscrawl.extract.post import PostFields, parse_post_page
from newscrawl.extract.share import ShareFields, merge_share, parse_share_json

BASE = "https://finews.withounder.com"
ROLLING = f"{BASE}/emnews/2022/05/26/202205262391921712.html"
SHARE = "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=202205262391921712"


def post_page(content: str, *, title: str = "", stamp: str = "", tag: str = "东财滚动新闻") -> str:
    return (
        "<html><head></head><body><section>"
        f"<small>(GMT+8, Asia/Shanghai, CST) {stamp}</small><h1>{title}</h1>{content}"
        f"<small>tags: <em>{tag}</em></small></section></body></html>"
    )


def post(content: str, url: str = ROLLING, **kwargs: str) -> PostFields:
    fields = parse_post_page(post_page(content, **kwargs), url)
    assert fields is not None
    return fields


def share_json(**keys: object) -> bytes:
    return json.dumps(keys, ensure_ascii=False).encode("utf-8")


# --- parse_share_json ---------------------------------------------------------


def test_text_key_and_modelled_keys() -> None:
    share = parse_share_json(
        share_json(
            success=True,
            infoCode="NW202202182281010830",
            title="峄城精准监督护航营商环境",
            showtime="2022-02-18 10:01:44",
            mediaName="大众日报",
            text="<p>□ 本报记者张环泽 </p>\n <p>本报通讯员赵峰顿星亮</p>\n <p>正文。</p>"
            '<p class="em_media">（文章来源：大众日报）</p>',
        )
    )
    assert share is not None
    assert share.title == "峄城精准监督护航营商环境"
    assert share.showtime == "2022-02-18 10:01:44"
    assert share.published_at == datetime(2022, 2, 18, 2, 1, 44, tzinfo=UTC)
    assert share.media_name == "大众日报"
    assert share.body == "正文。"
    assert share.authors == ["张环泽"]
    assert share.correspondents == ["赵峰", "顿星亮"]
    assert share.source == "大众日报"


def test_older_content_key_and_str_input() -> None:
    share = parse_share_json(json.dumps({"content": "<p>滚动新闻全文。(央视新闻)</p>"}))
    assert share is not None
    assert (share.body, share.source, share.title, share.published_at) == (
        "滚动新闻全文。",
        "央视新闻",
        None,
        None,
    )


def test_bom_gbk_and_wrapped_answers() -> None:
    utf8_bom = "\ufeff" + json.dumps({"text": "<p>正文。</p>"}, ensure_ascii=False)
    share = parse_share_json(utf8_bom.encode("utf-8"))
    assert share is not None and share.body == "正文。"
    share = parse_share_json(
        json.dumps({"text": "<p>正文。</p>"}, ensure_ascii=False).encode("gbk")
    )
    assert share is not None and share.body == "正文。"
    share = parse_share_json(share_json(data={"text": "<p>包起来的。</p>"}))
    assert share is not None and share.body == "包起来的。"
    share = parse_share_json(share_json(text="", content="<p>text 为空时读 content。</p>"))
    assert share is not None and share.body == "text 为空时读 content。"
    share = parse_share_json(share_json(text="正文没有标签。<br>第二行"))
    assert share is not None and share.body == "正文没有标签。\n第二行"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"<html>404</html>",
        b"[1, 2, 3]",
        b'"a string"',
        b"null",
        b"{}",
        b'{"success": false, "message": "infoCode not found", "text": null}',
        b'{"text": 5, "title": ["x"], "showtime": {}, "mediaName": 3}',
        b'{"text": "   ", "title": "  "}',
        b"\xff\xfe\x00garbage",
        b"[" * 100_000,
    ],
)
def test_answers_without_an_article(data: bytes) -> None:
    assert parse_share_json(data) is None


def test_wrong_types_are_tolerated() -> None:
    share = parse_share_json(
        share_json(text="<p>正文。</p>", title=5, showtime=["x"], mediaName=None)
    )
    assert share is not None
    assert (share.body, share.title, share.showtime, share.media_name) == (
        "正文。",
        None,
        None,
        None,
    )
    share = parse_share_json(share_json(title="只有标题"))
    assert share is not None and share.body == "" and share.title == "只有标题"
    share = parse_share_json(share_json(showtime=1645149704000))
    assert share is not None and share.showtime == "1645149704000"


# --- merge_share ------------------------------------------------------------------


def test_no_share_dates_from_the_id_and_title_from_the_digest() -> None:
    fields = post(
        "<blockquote><p>据霍尼韦尔官网消息，霍尼韦尔宣布为蔚来提供制冷剂。据悉，这是首家。（上海证券报）</p>"
        "</blockquote><p>国内首款汽车来了！</p><p>&lt;&gt;</p>"
    )
    merged = merge_share(fields, None)
    assert merged.title == "据霍尼韦尔官网消息，霍尼韦尔宣布为蔚来提供制冷剂"
    assert merged.published_at == datetime(2022, 5, 25, 16, tzinfo=UTC)
    assert merged.published_at_source == "info_code"
    assert merged.derived_fields == ["title", "published_at"]
    assert (
        merged.summary
        == "据霍尼韦尔官网消息，霍尼韦尔宣布为蔚来提供制冷剂。据悉，这是首家。（上海证券报）"
    )
    # the post itself is not changed
    assert fields.title == "" and fields.published_at is None and fields.derived_fields == []


def test_title_from_the_body_without_digest() -> None:
    merged = merge_share(post("<p>离岸人民币升至6.3512，创新高！另一句。</p>"), None)
    assert merged.title == "离岸人民币升至6.3512，创新高"
    assert merged.derived_fields == ["title", "published_at"]


def test_share_title_and_showtime_win_over_derivations() -> None:
    fields = post("<blockquote><p>摘要。</p></blockquote>")
    share = parse_share_json(
        share_json(title="分享标题", showtime="2022-05-26 09:30:00", content="<p>全文。</p>")
    )
    merged = merge_share(fields, share)
    assert merged.title == "分享标题"
    assert merged.published_at == datetime(2022, 5, 26, 1, 30, tzinfo=UTC)
    assert merged.published_at_source == "share_json"
    assert merged.derived_fields == ["title", "published_at"]


def test_page_values_are_kept() -> None:
    fields = post("<p>正文。</p>", title="页面标题", stamp="2022-05-26 10:00:00")
    share = parse_share_json(share_json(title="分享标题", showtime="2022-05-27 10:00:00"))
    merged = merge_share(fields, share)
    assert merged.title == "页面标题"
    assert merged.published_at == datetime(2022, 5, 26, 2, tzinfo=UTC)
    assert merged.published_at_source == "page"
    assert merged.derived_fields == []


def test_digest_only_post_gets_the_full_text() -> None:
    fields = post(
        f'<blockquote><p>摘要一句。</p></blockquote><p><a href="{SHARE}">{SHARE}</a></p>',
        title="标题",
    )
    assert fields.body == "" and fields.share_url == SHARE
    share = parse_share_json(
        share_json(
            content="<p>本报记者 张三 通讯员 李四</p><p>全文第一句。第二句。</p>"
            '<center><img src="https://dfscdn.dfcfw.com/a.jpg"></center><p>图为现场。</p>'
            "<p>（文章来源：上海证券报）</p>"
        )
    )
    merged = merge_share(fields, share)
    assert merged.body == "全文第一句。第二句。"
    assert merged.summary == "摘要一句。"  # the digest stays the summary
    assert merged.images == [{"src": "https://dfscdn.dfcfw.com/a.jpg", "caption": "图为现场。"}]
    assert (merged.authors, merged.correspondents) == (["张三"], ["李四"])
    assert merged.source == "上海证券报"  # better than the tag's 东财滚动


def test_truncated_post_gets_the_longer_text_and_summary_follows() -> None:
    fields = post("<p>只有一句。</p>", title="标题", stamp="2021-12-08 10:00:00")
    share = parse_share_json(share_json(content="<p>完整的第一句。</p><p>第二段。</p>"))
    merged = merge_share(fields, share)
    assert merged.body == "完整的第一句。\n第二段。"
    assert merged.summary == "完整的第一句。"


def test_longer_post_body_is_kept_and_its_fields_win() -> None:
    fields = post(
        "<p>本报记者 王五</p><p>很长的正文第一段。</p><p>很长的正文第二段。</p>"
        "<p>（文章来源：大众日报）</p>",
        title="标题",
        stamp="2022-02-18 10:01:44",
    )
    share = parse_share_json(
        share_json(
            text="<p>记者 赵六</p><p>短。</p><p>（文章来源：别的报）</p>", mediaName="某媒体"
        )
    )
    merged = merge_share(fields, share)
    assert merged.body == "很长的正文第一段。\n很长的正文第二段。"
    assert merged.authors == ["王五"]
    assert merged.source == "大众日报"


def test_media_name_fills_only_a_missing_source() -> None:
    fields = post("<p>正文。</p>", title="标题", stamp="2022-02-18 10:01:44", tag="站长消息")
    assert fields.source is None
    merged = merge_share(fields, ShareFields(media_name="某媒体"))
    assert merged.source == "某媒体"
    fields = post("<p>正文。</p>", title="标题", stamp="2022-02-18 10:01:44")
    assert merge_share(fields, ShareFields(media_name="某媒体")).source == "东财滚动"


def test_notice_without_date_stays_undated() -> None:
    fields = post("<p>祝贺开站</p>", url=f"{BASE}/sitenews/2021/12/01/init.html", title="开站大吉")
    merged = merge_share(fields, None)
    assert merged.published_at is None and merged.published_at_source is None
    assert merged.derived_fields == []


def test_empty_post_and_share_give_empty_fields() -> None:
    fields = post("")
    merged = merge_share(fields, None)
    assert (merged.title, merged.body, merged.summary) == ("", "", "")
    assert merged.derived_fields == ["published_at"]
