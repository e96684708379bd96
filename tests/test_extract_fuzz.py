"""Smoke test: mutated real pages and share answers never make extraction raise."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newscrawl.extract.post import PostFields, parse_post_page
from newscrawl.extract.share import ShareFields, merge_share, parse_share_json

GOLDEN = Path(__file__).resolve().parent / "golden"
PAGES = sorted(GOLDEN.glob("*.html"))
SHARES = sorted(GOLDEN.glob("*.share.json"))
URL = "https://finews.withounder.com/emnews/2022/05/26/202205262391921712.html"

#: fragments that stress the walker: unbalanced tags, comments, odd attributes
FRAGMENTS = [
    "<p>",
    "</p>",
    "<section>",
    "</section>",
    "<h1>",
    "<blockquote>",
    "<!-- EM_StockImg_Start -->",
    "<!-- EM_StockImg_End -->",
    "<!--",
    "<br>",
    '<img src="">',
    '<img src="http://[::1">',
    '<a href="http://[bad">http://x</a>',
    '<a href="//finews.withounder.com/category/%zz.html">返回x</a>',
    '<p style="display:none">',
    '<p class="em_media">（文章来源：',
    "（记者 ",
    "本报记者",
    "\x00",
    "&#0;",
    "&#xD800;",
    "&lt;&gt;",
    "<small>tags: <em>",
    '<script type="application/ld+json">{"datePublished": 5}</script>',
    "<center><img src=x></center>",
    "<table><tr><td>",
    "\ufeff",
]

mutation = st.tuples(
    st.sampled_from(["delete", "insert", "duplicate", "truncate"]),
    st.floats(min_value=0, max_value=1),
    st.integers(min_value=0, max_value=400),
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20)),
)


def mutate(text: str, ops: list[tuple[str, float, int, str]]) -> str:
    for kind, where, size, fragment in ops:
        at = int(where * len(text))
        if kind == "delete":
            text = text[:at] + text[at + size :]
        elif kind == "insert":
            text = text[:at] + fragment + text[at:]
        elif kind == "duplicate":
            text = text[:at] + text[at : at + size] + text[at:]
        else:  # cut the end off (keep most of the page, so that it stays a post)
            text = text[: int((0.9 + 0.1 * where) * len(text))]
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    page=st.sampled_from(PAGES),
    ops=st.lists(mutation, min_size=1, max_size=6),
    url=st.sampled_from(
        [URL, "", "not a url", "http://[::1", "https://finews.zning.me/x/1/2/3/4.html"]
    ),
)
def test_mutated_pages_never_raise(
    page: Path, ops: list[tuple[str, float, int, str]], url: str
) -> None:
    fields = parse_post_page(mutate(page.read_text(encoding="utf-8"), ops), url)
    assert fields is None or isinstance(fields, PostFields)
    if fields is not None:
        merged = merge_share(fields, None)
        assert isinstance(merged.body, str) and isinstance(merged.summary, str)


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
    },
)


@settings(max_examples=200, deadline=None)
@given(doc=st.one_of(share_keys, json_values))
def test_odd_share_documents_never_raise(doc: object) -> None:
    share = parse_share_json(json.dumps(doc, allow_nan=True))
    assert share is None or isinstance(share, ShareFields)


@settings(max_examples=200, deadline=None)
@given(
    share=st.sampled_from(SHARES),
    ops=st.lists(mutation, min_size=1, max_size=6),
    page=st.sampled_from(PAGES),
)
def test_mutated_share_answers_never_raise(
    share: Path, ops: list[tuple[str, float, int, str]], page: Path
) -> None:
    data = mutate(share.read_bytes().decode("utf-8"), ops).encode("utf-8", "surrogatepass")
    result = parse_share_json(data)
    assert result is None or isinstance(result, ShareFields)
    fields = parse_post_page(page.read_text(encoding="utf-8"), URL)
    assert fields is not None
    merged = merge_share(fields, result)
    assert isinstance(merged, PostFields)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=300))
def test_random_bytes_as_share_answers(data: bytes) -> None:
    result = parse_share_json(data)
    assert result is None or isinstance(result, ShareFields)
