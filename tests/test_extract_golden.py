"""Golden tests: the 9 real posts, rendered by the replica, extracted, compared
field by field with the hand-written ``newscrawl/replica/posts/expected.jsonl``.

``tests/golden/<post>.html`` (and ``<post>.share.json`` for a post with a share
link) are saved pages: inputs that only change deliberately. Regenerate them
after a deliberate change of the replica's rendering with::

    .venv/bin/python -m tests.test_extract_golden

The same comparison also runs on what the replica renders *now*, so a
rendering change that breaks extraction shows up before anyone regenerates.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from newscrawl.extract.post import PostFields, parse_post_page
from newscrawl.extract.share import merge_share, parse_share_json
from newscrawl.items import EXTRACTED_FIELDS
from newscrawl.replica import render
from newscrawl.replica.posts import Post, load_posts, sample_posts_dir
from newscrawl.replica.render import render_post_page
from newscrawl.replica.share import doc_from_post, share_code
from newscrawl.replica.site import Site
from newscrawl.sites import finews

GOLDEN = Path(__file__).resolve().parent / "golden"
EXPECTED_FILE = sample_posts_dir() / "expected.jsonl"
#: the fields of an expected document that extraction decides
FIELDS = EXTRACTED_FIELDS
#: the fields the replica's build adds
BUILD_FIELDS = ("file", "reachable", "near_duplicate_of")


def _expected() -> list[dict[str, Any]]:
    lines = EXPECTED_FILE.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


EXPECTED = _expected()


def _stem(expected: dict[str, Any]) -> str:
    return Path(expected["file"]).stem


def as_document(fields: PostFields) -> dict[str, Any]:
    """The extracted fields in the shape of an expected document."""
    url = finews.canonical_url(fields.canonical_url or "")
    return {
        "key": finews.article_key(fields.info_code, url),
        "url": url,
        "kind": fields.kind,
        "info_code": fields.info_code,
        "title": fields.title,
        "published_at": (
            fields.published_at.strftime("%Y-%m-%dT%H:%M:%SZ") if fields.published_at else None
        ),
        "published_at_source": fields.published_at_source,
        "derived_fields": fields.derived_fields,
        "categories": fields.categories,
        "tags": fields.tags,
        "source": fields.source,
        "authors": fields.authors,
        "correspondents": fields.correspondents,
        "body": fields.body,
        "summary": fields.summary,
        "images": fields.images,
        "share_url": fields.share_url,
        "origin_url": fields.origin_url,
    }


def extract(html: str, url: str, share_data: bytes | None) -> dict[str, Any]:
    fields = parse_post_page(html, url)
    assert fields is not None, url
    share = parse_share_json(share_data) if share_data is not None else None
    if share_data is not None:
        assert share is not None, "the replica's share JSON should parse"
    return as_document(merge_share(fields, share))


def _compare(got: dict[str, Any], expected: dict[str, Any]) -> None:
    for name in FIELDS:
        assert got[name] == expected[name], f"{expected['file']}: {name}"


def test_expected_file_covers_every_real_post() -> None:
    files = sorted(post.file_name for post in load_posts(sample_posts_dir()))
    assert sorted(e["file"] for e in EXPECTED) == files
    assert len(files) == 9
    for expected in EXPECTED:
        assert set(expected) == {*FIELDS, *BUILD_FIELDS}, expected["file"]
        assert expected["reachable"] is True and expected["near_duplicate_of"] is None
        if expected["info_code"]:
            assert expected["key"] == "finews:" + expected["info_code"]
        else:
            sha = hashlib.sha1(expected["url"].encode()).hexdigest()
            assert expected["key"] == "finews:url:" + sha


def test_known_facts_of_the_seed_post() -> None:
    seed = next(e for e in EXPECTED if e["file"] == "2022-02-18-NW202202182281010830.md")
    assert seed["title"] == "峄城精准监督护航营商环境"
    assert seed["published_at"] == "2022-02-18T02:01:44Z"
    assert seed["categories"] == ["dazhongribao"]
    assert seed["source"] == "大众日报"
    assert seed["authors"] == ["张环泽"]
    assert seed["correspondents"] == ["赵峰", "顿星亮"]
    assert seed["body"].startswith("“以前，我手机里面")
    for absent in ("本报记者", "通讯员", "文章来源", "http", "返回"):
        assert absent not in seed["body"]


@pytest.mark.parametrize("expected", EXPECTED, ids=_stem)
def test_golden_page(expected: dict[str, Any]) -> None:
    stem = _stem(expected)
    html = (GOLDEN / f"{stem}.html").read_text(encoding="utf-8")
    share_path = GOLDEN / f"{stem}.share.json"
    share_data = share_path.read_bytes() if share_path.exists() else None
    assert (share_data is not None) == (expected["share_url"] is not None)
    _compare(extract(html, expected["url"], share_data), expected)


@pytest.mark.parametrize("expected", EXPECTED, ids=_stem)
def test_golden_page_at_other_addresses(expected: dict[str, Any]) -> None:
    """The alias host, http and a query string change nothing."""
    html = (GOLDEN / f"{_stem(expected)}.html").read_text(encoding="utf-8")
    plain = extract(html, expected["url"], None)
    for url in (
        expected["url"].replace(finews.MAIN_HOST, finews.ALIAS_HOSTS[0]) + "?from=home",
        expected["url"].replace("https://", "http://"),
    ):
        assert extract(html, url, None) == plain


def _render(post: Post, site: Site) -> tuple[str, bytes | None]:
    code = share_code(post.body)
    share = None
    if code is not None:
        share = json.dumps(doc_from_post(post, code), ensure_ascii=False).encode("utf-8")
    return render_post_page(post, site), share


@pytest.mark.parametrize("expected", EXPECTED, ids=_stem)
def test_current_rendering(expected: dict[str, Any]) -> None:
    site = Site(load_posts(sample_posts_dir()))
    post = next(p for p in site.posts if p.file_name == expected["file"])
    assert site.url(post) == expected["url"]
    html, share = _render(post, site)
    _compare(extract(html, site.url(post), share), expected)


def test_other_replica_pages_are_not_posts() -> None:
    site = Site(load_posts(sample_posts_dir()))
    pages = {
        "home": render.render_home(site),
        "category": render.render_category_page(site, "dazhongribao"),
        "folder": render.render_folder_page(site, "emnews"),
        "404": render.render_404(site),
        "share": render.render_share_page(),
        "feed": render.render_feed(site),
    }
    for name, html in pages.items():
        assert parse_post_page(html, f"https://{finews.MAIN_HOST}/") is None, name


def regenerate() -> None:
    """Write ``tests/golden/`` from the replica's current rendering."""
    GOLDEN.mkdir(exist_ok=True)
    site = Site(load_posts(sample_posts_dir()))
    for post in site.posts:
        stem = Path(post.file_name).stem
        html, share = _render(post, site)
        (GOLDEN / f"{stem}.html").write_text(html, encoding="utf-8")
        share_path = GOLDEN / f"{stem}.share.json"
        if share is not None:
            share_path.write_bytes(share)
        elif share_path.exists():
            share_path.unlink()
        sys.stdout.write(f"wrote {stem}\n")


if __name__ == "__main__":
    regenerate()
