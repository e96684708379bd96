"""parse_post_page on hand-made pages: every body form of SITE.md, head data, odd pages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newscrawl.extract.post import PostFields, parse_post_page

BASE = "https://finews.withounder.com"
URL = f"{BASE}/dazhongribao/2022/02/18/NW202202182281010830.html"
SHARE = "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202202182281010830"
BACK_LINKS = (
    '<p><a href="//finews.withounder.com/category/dazhongribao.html">返回大众日报新闻</a>｜'
    '<a href="//finews.withounder.com/">返回首页</a></p>'
)


def page(
    content: str,
    *,
    title: str = "标题",
    stamp: str = "2022-02-18 10:01:44",
    tags: str = "<em>大众日报新闻</em>",
    head: str = "",
) -> str:
    return f"""<!DOCTYPE html><html lang="zh-CN"><head><meta charset="UTF-8">
<meta property="og:url" content="https://finews.zning.me/dazhongribao/2022/02/18/NW202202182281010830.html">
{head}
</head><body><div class="wrapper"><header><h1><a href="{BASE}/">金融消息</a></h1></header>
<section>
<small>(GMT+8, Asia/Shanghai, CST) {stamp}</small>
<h1>{title}</h1>
{content}
<small>tags: {tags}</small>
</section><footer><p>&copy; 2021</p></footer></div></body></html>"""


def parse(content: str, url: str = URL, **kwargs: str) -> PostFields:
    fields = parse_post_page(page(content, **kwargs), url)
    assert fields is not None
    return fields


def test_bylines_source_share_and_back_links() -> None:
    fields = parse(
        """<p>□ 本报记者张环泽 </p>
 <p>本报通讯员赵峰顿星亮</p>
 <p>“以前，我手机里面有10多个群。”近日，某企业负责人说。</p>
 <p>深入一线，倾听企声找“痛点”</p>
 <p>区纪委监委负责人表示。 </p><p class="em_media">（文章来源：大众日报）</p>
"""
        f'<p><a href="{SHARE}">{SHARE}</a></p>\n{BACK_LINKS}'
    )
    assert fields.post_id == fields.info_code == "NW202202182281010830"
    assert fields.kind == "news"
    assert fields.title == "标题"
    assert fields.published_at == datetime(2022, 2, 18, 2, 1, 44, tzinfo=UTC)
    assert fields.published_at_source == "page"
    assert fields.authors == ["张环泽"]
    assert fields.correspondents == ["赵峰", "顿星亮"]
    assert fields.source == "大众日报"
    assert fields.body == (
        "“以前，我手机里面有10多个群。”近日，某企业负责人说。\n深入一线，倾听企声找“痛点”\n区纪委监委负责人表示。"
    )
    assert fields.summary == "“以前，我手机里面有10多个群。"  # up to the first 。, as the rule says
    assert fields.share_url == (
        "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202202182281010830"
    )
    assert fields.origin_url is None
    assert fields.category_links == [f"{BASE}/category/dazhongribao.html"]
    assert fields.categories == ["dazhongribao"]
    assert fields.tags == ["大众日报新闻"]
    assert fields.outlinks == []


@pytest.mark.parametrize(
    ("byline_html", "authors", "correspondents"),
    [
        ("<p>本报记者 张三</p>", ["张三"], []),
        ("<p>本报记者　张三 李四</p>", ["张三", "李四"], []),
        ("<p>记者张三 通讯员李四</p>", ["张三"], ["李四"]),
        ("<p>■ 本报记者 张三 实习生 王五</p>", ["张三"], []),
        ("<p>文/记者 张三</p>", ["张三"], []),
        ("<p>新华社北京2月18日电（记者 张三、李四）</p>", ["张三", "李四"], []),
        ("<p>本报记者 张三<br />本报通讯员 李四</p>", ["张三"], ["李四"]),
        ("<p><strong>本报记者 张三</strong></p>", ["张三"], []),
    ],
)
def test_byline_paragraphs_are_dropped(
    byline_html: str, authors: list[str], correspondents: list[str]
) -> None:
    fields = parse(byline_html + "<p>正文第一段。</p><p>正文第二段。</p>")
    assert fields.authors == authors
    assert fields.correspondents == correspondents
    assert fields.body == "正文第一段。\n正文第二段。"


def test_dateline_lead_keeps_its_text() -> None:
    fields = parse("<p>新华社北京2月18日电（记者 张三、李四）国务院日前印发通知。</p>")
    assert fields.authors == ["张三", "李四"]
    assert fields.body == "新华社北京2月18日电（记者 张三、李四）国务院日前印发通知。"


def test_trailing_byline_and_source_are_cut() -> None:
    fields = parse("<p>第一段。</p><p>增长8.4%。（记者 王五）</p>")
    assert fields.authors == ["王五"]
    assert fields.body == "第一段。\n增长8.4%。"
    fields = parse("<p>增长8.4%。（记者 王五）（央视新闻）</p>")
    assert (fields.authors, fields.source, fields.body) == (["王五"], "央视新闻", "增长8.4%。")
    fields = parse("<p>增长8.4%。(央视新闻)</p>")
    assert (fields.source, fields.body) == ("央视新闻", "增长8.4%。")


def test_source_line_beats_trailing_and_tag() -> None:
    fields = parse(
        "<p>正文。（央视新闻）</p>"
        "<p class='em_media'>（文章来源：上海<span><a>证券</a></span>报）</p>"
    )
    assert fields.source == "上海证券报"
    assert fields.body == "正文。"
    assert parse("<p>正文。</p>").source == "大众日报"
    assert parse("<p>正文。</p>", tags="<em>站长消息</em>").source is None


def test_noise_is_dropped_and_stock_names_kept() -> None:
    fields = parse(
        '<p style="display:none;height:1px;overflow:hidden;"><br /></p>'
        '<!-- EM_StockImg_Start --><p style="text-align:center;"><a href="http://quote.eastmoney.com/unify/r/106.NIO">'
        '<img src="https://webquoteklinepic.eastmoney.com/GetPic.aspx?nid=106.NIO" /></a></p>'
        "<!-- EM_StockImg_End -->"
        '<p>具体来看，<span id="stock_1.600160">'
        '<a href="http://quote.eastmoney.com/unify/r/1.600160" class="keytip">巨化股份</a>'
        '</span><span id="quote_1.600160"></span>已有产品。</p>'
        '<p><span web="1" href="http://quote.eastmoney.com/unify/r/1.600160">巨化股份</span>表示。</p>'
    )
    assert fields.body == "具体来看，巨化股份已有产品。\n巨化股份表示。"
    assert fields.images == []
    assert fields.outlinks == ["http://quote.eastmoney.com/unify/r/1.600160"]


def test_images_and_captions() -> None:
    fields = parse(
        "<p>第一段。</p>"
        '<center><img src="https://dfscdn.dfcfw.com/a.jpg" /></center>'
        '<p style="text-align:center;">图片来源：霍尼韦尔官网</p>'
        '<p><img src="/b.png"></p><p>图为某企业车间。</p>'
        '<center><img src="https://dfscdn.dfcfw.com/c.jpg" /></center>'
        "<p>此前，公司曾表示。</p>"
        '<p><img src="https://dfscdn.dfcfw.com/d.jpg" /></p><p>图：新产品</p>'
    )
    assert fields.images == [
        {"src": "https://dfscdn.dfcfw.com/a.jpg", "caption": "图片来源：霍尼韦尔官网"},
        {"src": f"{BASE}/b.png", "caption": "图为某企业车间。"},
        {"src": "https://dfscdn.dfcfw.com/c.jpg", "caption": None},
        {"src": "https://dfscdn.dfcfw.com/d.jpg", "caption": "图：新产品"},
    ]
    assert fields.body == "第一段。\n此前，公司曾表示。"


def test_text_cleaning() -> None:
    fields = parse(
        "<p>　　据了解，《&lt;蒙特利尔议定书&gt;基加利修正案》已生效。 </p>"
        "<p>&nbsp;CJ ENM&nbsp;和 TVING&nbsp;</p>"
        "<p>第一行<br /><br />　第二行 <br /></p>"
        "<p><strong>什么是HFO-1234yf</strong></p>"
        "<p>  </p>"
    )
    assert fields.body == (
        "据了解，《<蒙特利尔议定书>基加利修正案》已生效。\n"
        "CJ ENM 和 TVING\n第一行\n第二行\n什么是HFO-1234yf"
    )


def test_digest_goes_to_summary() -> None:
    fields = parse(
        "<blockquote>\n  <p>据悉，这是摘要。（上海证券报）</p>\n</blockquote>\n"
        "<p>正文第一段。</p>\n<p>&lt;&gt;</p>",
        title="",
        stamp="",
    )
    assert fields.digest == fields.summary == "据悉，这是摘要。（上海证券报）"
    assert fields.body == "正文第一段。"
    assert fields.share_url is None
    assert fields.title == ""
    assert fields.published_at is None and fields.published_at_source is None
    assert fields.derived_fields == []


def test_origin_link_and_relative_back_links() -> None:
    url = f"{BASE}/emnews/2021/12/08/202112082206735975.html"
    fields = parse(
        "<p>正文。(央视新闻)</p>\n"
        '<p><a href="http://finance.eastmoney.com/news/1355,202112082206735975.html">'
        "http://finance.eastmoney.com/news/1355,202112082206735975.html</a></p>\n"
        '<p><a href="../emnews/">返回东财滚动新闻</a>\n<a href="../">返回首页</a></p>',
        url=url,
        tags="<em>东财滚动新闻</em>",
    )
    assert fields.origin_url == "http://finance.eastmoney.com/news/1355,202112082206735975.html"
    assert fields.share_url is None
    assert fields.category_links == [f"{BASE}/emnews/2021/12/emnews/"]
    assert fields.categories == ["emnews"]
    assert fields.kind == "news" and fields.info_code == "202112082206735975"
    assert fields.body == "正文。" and fields.source == "央视新闻"
    assert fields.outlinks == []


def test_older_share_host_and_encoded_category() -> None:
    share = "http://choicewzp1.eastmoney.com/html_News/NewsShare.html?infoCode=NW202202182281010830"
    fields = parse(
        f'<p>正文。</p><p><a href="{share}">{share}</a></p>'
        '<p><a href="//finews.withounder.com/category/21shijijingjibaodao%2021caijingAPP.html">'
        '返回21世纪经济报道新闻</a>｜<a href="//finews.withounder.com/">返回首页</a></p>'
    )
    assert fields.share_url == share
    assert fields.categories == ["21shijijingjibaodao 21caijingAPP"]


def test_categories_fall_back_to_the_path_and_notices() -> None:
    url = f"{BASE}/sitenews/2021/12/01/init.html"
    fields = parse("<p>祝贺开站</p>", url=url, tags="<em>站长消息</em>")
    assert fields.categories == ["sitenews"]
    assert fields.kind == "notice" and fields.info_code is None and fields.post_id == "init"
    assert fields.summary == "祝贺开站"


def test_head_dates_and_declared_urls() -> None:
    head = (
        f'<link rel="canonical" href="{URL}" />'
        f'<meta property="og:url" content="{URL}" />'
        '<meta property="article:published_time" content="2022-02-18T10:01:44+08:00" />'
    )
    fields = parse("<p>正文。</p>", stamp="", head=head)
    assert fields.published_at == datetime(2022, 2, 18, 2, 1, 44, tzinfo=UTC)
    assert fields.canonical_url == URL
    assert fields.declared_urls == [
        URL,
        "https://finews.zning.me/dazhongribao/2022/02/18/NW202202182281010830.html",
    ]
    ld = '<script type="application/ld+json">{"datePublished":"2022-02-18T10:01:44+08:00"}</script>'
    assert parse("<p>正文。</p>", stamp="", head=ld).published_at == datetime(
        2022, 2, 18, 2, 1, 44, tzinfo=UTC
    )
    bad_ld = '<script type="application/ld+json">{"datePublished": </script>'
    assert parse("<p>正文。</p>", stamp="", head=bad_ld).published_at is None


def test_post_id_from_canonical_when_the_url_has_none() -> None:
    head = f'<link rel="canonical" href="{URL}" />'
    fields = parse_post_page(page("<p>正文。</p>", head=head), "https://finews.withounder.com/")
    assert fields is not None
    assert fields.post_id == "NW202202182281010830"
    assert fields.categories == ["dazhongribao"]  # from the canonical link's path


def test_title_entities() -> None:
    assert parse("<p>x</p>", title=" A &amp; B &lt;C&gt; ").title == "A & B <C>"


@pytest.mark.parametrize(
    "html",
    [
        "",
        "   ",
        "not html at all",
        "<html><body><h2>404 找不到页面 Page Not Found</h2></body></html>",
        "<html><body><section><h2 id='x'>大众日报新闻</h2>"
        "<ul><li><a href='/a.html'>A</a></li></ul></section></body></html>",
        "<section><p>no title</p></section>",
        "\x00\x01",
        "<?xml version='1.0'?><feed/>",
    ],
)
def test_not_post_pages(html: str) -> None:
    assert parse_post_page(html, URL) is None


def test_odd_but_post_pages_do_not_raise() -> None:
    fields = parse_post_page("<section><h1>只有标题</h1></section>", "not a url")
    assert fields is not None
    assert (fields.title, fields.body, fields.summary, fields.post_id) == ("只有标题", "", "", "")
    assert fields.kind == "notice"


@pytest.mark.parametrize("tag", ["span", "div", "blockquote", "p", "a", "center", "table", "em"])
def test_hostile_nesting(tag: str) -> None:
    """Deep nesting neither recurses without bound nor loses the text."""
    depth = 3000
    html = f"<section><h1>t</h1>{f'<{tag}>字' * depth}{f'</{tag}>' * depth}</section>"
    fields = parse_post_page(html, URL)
    assert fields is not None
    if tag != "blockquote":  # nested quotes are one digest
        assert fields.body.count("字") >= 250


@pytest.mark.parametrize(
    ("content", "body", "images"),
    [
        (
            "<p>a。</p><!-- EM_StockImg_Start --><p><img src='k.png'></p>"
            "<!-- EM_StockImg_End --><p>b。</p>",
            "a。\nb。",
            0,
        ),
        (
            "<p>a。</p><!-- EM_StockImg_Start --><p><img src='k.png'>"
            "<!-- EM_StockImg_End -->尾</p><p>b。</p>",
            "a。\n尾\nb。",
            0,
        ),
        (
            "<p>a。<!-- EM_StockImg_Start --><img src='k.png'><!-- EM_StockImg_End -->c</p>"
            "<p>b。</p>",
            "a。c\nb。",
            0,
        ),
        # a cut page: the start comment has no end, the text after it is kept
        ("<p>a。</p><!-- EM_StockImg_Start --><p><img src='k.png'></p><p>b。</p>", "a。\nb。", 1),
    ],
)
def test_stock_chart_blocks(content: str, body: str, images: int) -> None:
    fields = parse(content)
    assert fields.body == body
    assert len(fields.images) == images
