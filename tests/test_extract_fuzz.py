"""Fuzzing: mutated real pages and share answers never make a parser raise.

Inputs are the saved real pages (``tests/golden``) mutated at the text level
(deletions, insertions of tags and fragments, duplication, truncation) and
at the byte level (bit flips, random bytes, cuts inside a character), plus
hostile structure (deep nesting, huge attributes, huge text). Bytes go
through a real ``HtmlResponse`` and ``EncodingMiddleware`` the way the
crawler reads them. Every parser must return its type or None, never raise.

Profiles: ``NEWSCRAWL_FUZZ=ci`` (default, a few seconds per test, part of
``make test``) or ``NEWSCRAWL_FUZZ=long`` (about 40 times as many examples)::

    NEWSCRAWL_FUZZ=long .venv/bin/pytest tests/test_extract_fuzz.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrapy.http import HtmlResponse, TextResponse

from newscrawl.extract.encoding import choose_encoding
from newscrawl.extract.pages import classify_bad_page
from newscrawl.extract.post import PostFields, parse_post_page
from newscrawl.extract.share import ShareFields, classify_bad_share, merge_share, parse_share_json
from newscrawl.middlewares import EncodingMiddleware

GOLDEN = Path(__file__).resolve().parent / "golden"
PAGES = sorted(GOLDEN.glob("*.html"))
SHARES = sorted(GOLDEN.glob("*.share.json"))
TEXTS = {page: page.read_text(encoding="utf-8") for page in PAGES}
URL = "https://finews.withounder.com/emnews/2022/05/26/202205262391921712.html"

settings.register_profile(
    "newscrawl-fuzz-ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("newscrawl-fuzz-long", settings.get_profile("newscrawl-fuzz-ci"))
PROFILE = os.environ.get("NEWSCRAWL_FUZZ", "ci")
SCALE = {"ci": 1, "long": 40}.get(PROFILE, 1)
BASE = settings.get_profile(f"newscrawl-fuzz-{PROFILE if PROFILE in ('ci', 'long') else 'ci'}")


def fuzz(examples: int) -> settings:
    """The profile's settings with ``examples`` (times the profile's scale)."""
    return settings(BASE, max_examples=examples * SCALE)


#: fragments that stress the walker: unbalanced tags, comments, odd attributes
FRAGMENTS = [
    "<p>",
    "</p>",
    "<section>",
    "</section>",
    "<h1>",
    "</h1>",
    "<blockquote>",
    "<!-- EM_StockImg_Start -->",
    "<!-- EM_StockImg_End -->",
    "<!--",
    "-->",
    "<br>",
    '<img src="">',
    '<img src="http://[::1">',
    '<a href="http://[bad">http://x</a>',
    '<a href="//finews.withounder.com/category/%zz.html">返回x</a>',
    '<a href="javascript:alert(1)">返回首页</a>',
    '<p style="display:none">',
    '<p style="text-align:center">图片来源：',
    '<p class="em_media">（文章来源：',
    "（记者 ",
    "本报记者",
    "本报通讯员",
    "新华社北京2月18日电（记者",
    "\x00",
    "&#0;",
    "&#xD800;",
    "&#x110000;",
    "&lt;&gt;",
    "&",
    "<small>tags: <em>",
    "<small>(GMT+8, Asia/Shanghai, CST) 9999-99-99 99:99:99</small>",
    '<script type="application/ld+json">{"datePublished": 5}</script>',
    '<meta property="article:published_time" content="0000-00-00T00:00:00+99:00">',
    "<center><img src=x></center>",
    "<table><tr><td>",
    "<svg><foreignObject><p>",
    "<math><mi>",
    "<template><p>",
    "<noscript><p>",
    "<![CDATA[",
    "<?xml version='1.0'?>",
    "<!DOCTYPE x [<!ENTITY a 'aaaa'>]>",
    "\ufeff",
    "\u2028",
    "\ud7ff",
]
TAGS = (
    "p div span a em strong center blockquote h1 h2 small section table td li img br script "
    "style iframe form"
).split()
ATTRS = ["", ' style="display:none"', ' style="text-align:center"', ' class="em_media"',
         ' href="//finews.withounder.com/category/x.html"', ' src="x.jpg"', ' id="quote_1.1"',
         ' onload="x()"', " hidden", ' style="', ' href="']  # fmt: skip

tag_strings = st.builds(
    lambda tag, attr, close: f"<{tag}{attr}>" + (f"</{tag}>" if close else ""),
    st.sampled_from(TAGS),
    st.sampled_from(ATTRS),
    st.booleans(),
)
mutation = st.tuples(
    st.sampled_from(["delete", "insert", "duplicate", "truncate", "tag"]),
    st.floats(min_value=0, max_value=1),
    st.integers(min_value=0, max_value=400),
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20), tag_strings),
)


def mutate(text: str, ops: list[tuple[str, float, int, str]]) -> str:
    """Apply text-level mutations (positions as fractions of the length)."""
    for kind, where, size, fragment in ops:
        at = int(where * len(text))
        if kind == "delete":
            text = text[:at] + text[at + size :]
        elif kind in ("insert", "tag"):
            text = text[:at] + fragment + text[at:]
        elif kind == "duplicate":
            text = text[:at] + text[at : at + size] + text[at:]
        else:  # cut the end off (mostly near the end, so that it often stays a post)
            text = text[: int((0.9 + 0.1 * where) * len(text))]
    return text


byte_mutation = st.tuples(
    st.sampled_from(["flip", "set", "delete", "insert", "cut"]),
    st.floats(min_value=0, max_value=1),
    st.integers(min_value=0, max_value=255),
    st.binary(max_size=8),
)


def mutate_bytes(data: bytes, ops: list[tuple[str, float, int, bytes]]) -> bytes:
    """Apply byte-level mutations: bit flips, byte overwrites, deletions, inserts, cuts."""
    buf = bytearray(data)
    for kind, where, value, extra in ops:
        if not buf:
            buf.extend(extra)
            continue
        at = min(int(where * len(buf)), len(buf) - 1)
        if kind == "flip":
            buf[at] ^= 1 << (value % 8)
        elif kind == "set":
            buf[at] = value
        elif kind == "delete":
            del buf[at : at + 1 + value % 4]
        elif kind == "insert":
            buf[at:at] = extra
        else:
            del buf[at:]
    return bytes(buf)


def _check_page(text: str, url: str = URL) -> None:
    """Every page-level parser on ``text``: right types, never an exception."""
    reason = classify_bad_page(text)
    fields = parse_post_page(text, url)
    assert fields is None or isinstance(fields, PostFields)
    if reason is not None:
        assert fields is None
    if fields is not None:
        merged = merge_share(fields, None)
        assert isinstance(merged.body, str) and isinstance(merged.summary, str)
        assert isinstance(merged.title, str)
        assert all(isinstance(c, str) for c in merged.categories)
        assert all(isinstance(a, str) for a in (*merged.authors, *merged.correspondents))
        assert merged.published_at is None or merged.published_at.tzinfo is not None


@fuzz(500)
@given(
    page=st.sampled_from(PAGES),
    ops=st.lists(mutation, min_size=1, max_size=8),
    url=st.sampled_from(
        [URL, "", "not a url", "http://[::1", "https://finews.zning.me/x/1/2/3/4.html"]
    ),
)
def test_mutated_pages_never_raise(
    page: Path, ops: list[tuple[str, float, int, str]], url: str
) -> None:
    _check_page(mutate(TEXTS[page], ops), url)


@fuzz(500)
@given(
    page=st.sampled_from(PAGES),
    encoding=st.sampled_from(["utf-8", "gbk", "gb18030"]),
    header=st.sampled_from([None, "utf-8", "gbk", "iso-8859-1", "x-unknown"]),
    ops=st.lists(byte_mutation, min_size=1, max_size=10),
)
def test_byte_mutated_pages_through_a_response_never_raise(
    page: Path, encoding: str, header: str | None, ops: list[tuple[str, float, int, bytes]]
) -> None:
    data = mutate_bytes(TEXTS[page].encode(encoding), ops)
    content_type = f"text/html; charset={header}" if header else "text/html"
    response = HtmlResponse(URL, body=data, headers={"Content-Type": content_type})
    fixed = EncodingMiddleware().process_response(response.request, response)  # type: ignore[arg-type]
    assert isinstance(fixed, TextResponse)
    _check_page(fixed.text, fixed.url)


@fuzz(120)
@given(
    page=st.sampled_from(PAGES),
    where=st.floats(min_value=0, max_value=1),
    opener=st.sampled_from(["<div>", "<p><span>", "<blockquote>", "<b><i>", "<table><tr><td>",
                            "<a href='x'>", "<center>", "<li>", "<p style='display:none'>"]),
    depth=st.sampled_from([300, 5_000, 50_000]) | st.integers(min_value=50, max_value=50_000),
    closed=st.booleans(),
)  # fmt: skip
def test_deep_nesting_never_raises(
    page: Path, where: float, opener: str, depth: int, closed: bool
) -> None:
    text = TEXTS[page]
    at = int(where * len(text))
    closer = "".join(f"</{tag.split('>')[0].split()[0]}>" for tag in opener.split("<")[1:])
    nest = opener * depth + "嵌套" + (closer * depth if closed else "")
    _check_page(text[:at] + nest + text[at:])


@fuzz(80)
@given(
    page=st.sampled_from(PAGES),
    where=st.floats(min_value=0, max_value=1),
    template=st.sampled_from(['<img src="{}">', '<a href="{}">返回x</a>', '<p style="{}">x</p>',
                              '<p class="{}">x</p>', '<meta property="og:url" content="{}">',
                              "<p>{}</p>", "<!--{}-->", '<p title="{}">x</p>']),
    size=st.sampled_from([70_000, 1_500_000]) | st.integers(min_value=1_000, max_value=1_500_000),
    char=st.sampled_from(["a", "国", "&", " ", "/", "\\"]),
)  # fmt: skip
def test_huge_attributes_and_text_never_raise(
    page: Path, where: float, template: str, size: int, char: str
) -> None:
    text = TEXTS[page]
    at = int(where * len(text))
    _check_page(text[:at] + template.format(char * size) + text[at:])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
share_keys = st.fixed_dictionaries(
    {},
    optional={
        "text": json_values | st.sampled_from(FRAGMENTS),
        "content": json_values | st.sampled_from(FRAGMENTS),
        "title": json_values,
        "showtime": json_values,
        "mediaName": json_values,
        "data": json_values,
    },
)


def _check_share(data: bytes | str) -> None:
    reason = classify_bad_share(data)
    result = parse_share_json(data)
    assert result is None or isinstance(result, ShareFields)
    assert (result is None) == (reason is not None)
    fields = parse_post_page(TEXTS[PAGES[-1]], URL)
    assert fields is not None
    merged = merge_share(fields, result)
    assert isinstance(merged, PostFields) and isinstance(merged.body, str)


@fuzz(300)
@given(doc=st.one_of(share_keys, json_values))
def test_odd_share_documents_never_raise(doc: object) -> None:
    _check_share(json.dumps(doc, allow_nan=True))


@fuzz(300)
@given(
    share=st.sampled_from(SHARES),
    ops=st.lists(mutation, min_size=1, max_size=6),
)
def test_mutated_share_answers_never_raise(
    share: Path, ops: list[tuple[str, float, int, str]]
) -> None:
    _check_share(mutate(share.read_bytes().decode("utf-8"), ops).encode("utf-8", "surrogatepass"))


@fuzz(300)
@given(
    share=st.sampled_from(SHARES),
    encoding=st.sampled_from(["utf-8", "gbk", "gb18030"]),
    ops=st.lists(byte_mutation, min_size=1, max_size=10),
)
def test_byte_mutated_share_answers_never_raise(
    share: Path, encoding: str, ops: list[tuple[str, float, int, bytes]]
) -> None:
    doc = share.read_bytes().decode("utf-8")
    _check_share(mutate_bytes(doc.encode(encoding), ops))


@fuzz(120)
@given(
    page=st.sampled_from(PAGES),
    ops=st.lists(mutation, max_size=6),
    depth=st.sampled_from([0, 300, 20_000]) | st.integers(min_value=0, max_value=20_000),
)
def test_share_text_made_of_mutated_nested_pages_never_raises(
    page: Path, ops: list[tuple[str, float, int, str]], depth: int
) -> None:
    html = "<div>" * depth + mutate(TEXTS[page], ops)
    _check_share(json.dumps({"text": html, "title": "标题", "showtime": "2022-02-18 10:01:44"}))


@fuzz(300)
@given(data=st.binary(max_size=300))
def test_random_bytes_never_raise(data: bytes) -> None:
    _check_share(data)
    response = HtmlResponse(URL, body=data, headers={"Content-Type": "text/html"})
    assert choose_encoding(data, response.encoding, ["utf-8", "gbk"]) in (None, "utf-8", "gb18030")
    _check_page(response.text)
