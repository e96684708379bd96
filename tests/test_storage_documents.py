"""Items to documents, content hashes and the merge rules (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newscrawl.items import Article, Image
from newscrawl.storage.documents import (
    CONTENT_FIELDS,
    INSERTED,
    MERGED,
    UNCHANGED,
    UPDATED,
    content_hash,
    merge,
    to_document,
)

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
T2 = T0 + timedelta(days=2)
SHANGHAI = timezone(timedelta(hours=8))


def make_item(**fields):
    base = Article(
        key="finews:NW202403010000000001",
        site="finews",
        info_code="NW202403010000000001",
        url="https://finews.withounder.com/a/2024/03/01/NW202403010000000001.html",
        urls=["https://finews.withounder.com/a/2024/03/01/NW202403010000000001.html"],
        title="标题",
        published_at=datetime(2024, 3, 1, 16, 30, 15, 123456, tzinfo=SHANGHAI),
        published_at_source="page",
        categories=["a"],
        tags=["甲新闻"],
        source="甲",
        authors=["张三"],
        body="第一段。\n第二段。",
        summary="第一段。",
        images=[Image("https://img.example/1.jpg", "图注").to_dict()],
    )
    for name, value in fields.items():
        setattr(base, name, value)
    return base


def doc_of(**fields):
    from itemadapter import ItemAdapter

    return to_document(ItemAdapter(make_item(**fields)))


def test_to_document_maps_key_and_normalizes_the_date():
    doc = doc_of()
    assert doc["_id"] == "finews:NW202403010000000001"
    assert "key" not in doc
    # aware UTC, cut to the milliseconds BSON keeps
    assert doc["published_at"] == datetime(2024, 3, 1, 8, 30, 15, 123000, tzinfo=UTC)
    assert doc["images"] == [{"src": "https://img.example/1.jpg", "caption": "图注"}]
    assert set(Article.__dataclass_fields__) - {"key"} <= set(doc)


def test_to_document_copies_lists():
    item = make_item()
    doc = to_document({**item.__dict__})
    item.urls.append("https://elsewhere")
    assert doc["urls"] == [item.url]


def test_to_document_converts_image_objects():
    doc = to_document({"key": "k", "images": [Image("s.jpg")]})
    assert doc["images"] == [{"src": "s.jpg", "caption": None}]


def test_to_document_refuses_a_text_date():
    with pytest.raises(TypeError, match="expected a datetime"):
        to_document({"key": "k", "published_at": "2024-03-01"})


def test_content_hash_ignores_where_it_was_seen():
    a = doc_of()
    b = doc_of(urls=["u2"], categories=["b"], tags=["x"], url="https://finews.zning.me/x.html")
    assert content_hash(a) == content_hash(b)


@pytest.mark.parametrize("name", CONTENT_FIELDS)
def test_content_hash_sees_every_content_field(name):
    changed = {
        "published_at": datetime(2020, 1, 1, tzinfo=UTC),
        "authors": ["李四"],
        "correspondents": ["王五"],
        "images": [],
    }.get(name, "changed")
    assert content_hash(doc_of()) != content_hash({**doc_of(), name: changed})


def test_content_hash_same_for_naive_and_aware_utc():
    doc = doc_of()
    naive = {**doc, "published_at": doc["published_at"].replace(tzinfo=None)}
    assert content_hash(doc) == content_hash(naive)


def test_new_article_is_inserted_as_version_1():
    doc, outcome, archive = merge(None, doc_of(), "r1", T0)
    assert outcome == INSERTED and archive is None
    assert doc["version"] == 1
    assert doc["first_seen_at"] == doc["last_seen_at"] == doc["updated_at"] == T0
    assert doc["last_run_id"] == "r1"
    assert doc["content_hash"] == content_hash(doc_of())


def test_same_run_other_url_is_merged():
    stored, _, _ = merge(None, doc_of(), "r1", T0)
    other = doc_of(
        urls=["https://finews.withounder.com/b/x.html"], categories=["b", "a"], tags=["乙"]
    )
    doc, outcome, archive = merge(stored, other, "r1", T1)
    assert outcome == MERGED and archive is None
    assert doc["urls"] == [*stored["urls"], "https://finews.withounder.com/b/x.html"]
    assert doc["categories"] == ["a", "b"]
    assert doc["tags"] == ["甲新闻", "乙"]
    assert doc["version"] == 1
    assert doc["first_seen_at"] == T0
    # where it was seen changed: a reader sees a change, so updated_at moves
    assert doc["last_seen_at"] == doc["updated_at"] == T1


def test_same_run_keeps_the_richer_content():
    stored, _, _ = merge(None, doc_of(body="短。"), "r1", T0)
    doc, outcome, _ = merge(stored, doc_of(body="长得多的正文。\n第二段。"), "r1", T1)
    assert outcome == MERGED
    assert doc["body"] == "长得多的正文。\n第二段。" and doc["version"] == 1
    assert doc["content_hash"] == content_hash(doc) != stored["content_hash"]
    assert doc["updated_at"] == T1
    # and a poorer sighting afterwards does not replace it
    again, outcome, _ = merge(doc, doc_of(body="短。"), "r1", T2)
    assert outcome == MERGED and again["body"] == doc["body"]


def test_later_run_same_content_is_unchanged():
    stored, _, _ = merge(None, doc_of(), "r1", T0)
    doc, outcome, archive = merge(stored, doc_of(categories=["c"], outlinks=["x"]), "r2", T1)
    assert outcome == UNCHANGED and archive is None
    assert doc["version"] == 1 and doc["first_seen_at"] == T0
    assert doc["last_seen_at"] == doc["updated_at"] == T1 and doc["last_run_id"] == "r2"
    assert doc["categories"] == ["a", "c"]
    assert doc["outlinks"] == []  # only the unions and the sighting change
    changed = {k for k in doc if doc[k] != stored[k]}
    assert changed == {"categories", "last_seen_at", "updated_at", "last_run_id"}


def test_later_run_seeing_nothing_new_changes_only_the_sighting():
    stored, _, _ = merge(None, doc_of(), "r1", T0)
    doc, outcome, _ = merge(stored, doc_of(), "r2", T1)
    assert outcome == UNCHANGED
    changed = {k for k in doc if doc[k] != stored[k]}
    assert changed == {"last_seen_at", "last_run_id"}
    assert doc["updated_at"] == T0


def test_canonical_urls_add_nothing_to_a_document_stored_with_raw_forms():
    """Earlier versions recorded the raw request forms beside the declared
    canonical URL; the spider now records canonical forms only. The merge
    rewrites nothing, and a re-crawl is no visible change."""
    canonical = make_item().url
    raw = [
        canonical.replace("https://finews.withounder.com", "http://finews.zning.me") + "?from=home",
        canonical,
        canonical.replace("finews.withounder.com", "finews.zning.me"),
    ]
    stored, _, _ = merge(None, doc_of(urls=raw), "r1", T0)
    doc, outcome, _ = merge(stored, doc_of(urls=[canonical]), "r2", T1)
    assert outcome == UNCHANGED
    assert doc["urls"] == raw and doc["updated_at"] == T0


def test_journaled_sighting_written_later_keeps_its_sighting_time():
    doc, outcome, _ = merge(None, doc_of(), "r1", T1, seen_at=T0)
    assert outcome == INSERTED
    assert doc["first_seen_at"] == doc["last_seen_at"] == T0
    assert doc["updated_at"] == T1  # the write: what "updated since" follows


def test_older_sighting_never_replaces_newer_content():
    stored, _, _ = merge(None, doc_of(body="新的正文。"), "r2", T1)
    doc, outcome, archive = merge(stored, doc_of(body="旧的。", categories=["z"]), "r1", T2, T0)
    assert outcome == UNCHANGED and archive is None
    assert doc["body"] == "新的正文。" and doc["version"] == 1
    assert doc["categories"] == ["a", "z"]  # what it adds to where it was seen is kept
    assert doc["last_seen_at"] == T1 and doc["last_run_id"] == "r2" and doc["updated_at"] == T2
    # replaying it again changes nothing more
    again, outcome, _ = merge(doc, doc_of(body="旧的。", categories=["z"]), "r1", T2, T0)
    assert outcome == UNCHANGED and again == doc


def test_later_run_changed_content_is_updated_and_archived():
    stored, _, _ = merge(None, doc_of(), "r1", T0)
    doc, outcome, archive = merge(stored, doc_of(title="新标题", urls=["u9"]), "r2", T1)
    assert outcome == UPDATED
    assert doc["title"] == "新标题" and doc["version"] == 2
    assert doc["first_seen_at"] == T0 and doc["updated_at"] == doc["last_seen_at"] == T1
    assert doc["urls"] == [*stored["urls"], "u9"]
    assert doc["content_hash"] == content_hash(doc)
    assert archive is not None
    assert "_id" not in archive
    assert archive["article_id"] == stored["_id"] and archive["version"] == 1
    assert archive["title"] == "标题" and archive["archived_at"] == T1
    assert archive["last_run_id"] == "r1"


def test_shorter_body_in_a_later_run_is_still_an_update():
    stored, _, _ = merge(None, doc_of(), "r1", T0)
    doc, outcome, _ = merge(stored, doc_of(body="改短了。"), "r2", T1)
    assert outcome == UPDATED and doc["body"] == "改短了。"


bodies = st.text(alphabet="甲乙丙。\n", max_size=12)


@given(st.lists(st.tuples(st.sampled_from(["r1", "r2", "r3"]), bodies), min_size=1, max_size=8))
def test_merge_invariants(sightings):
    """Whatever the sequence of sightings: first_seen_at is the first one,
    versions never go down and rise exactly on updates, urls only grow."""
    stored = None
    version = 0
    for step, (run, body) in enumerate(sightings):
        now = T0 + timedelta(hours=step)
        doc, outcome, archive = merge(stored, doc_of(body=body, urls=[f"u{step}"]), run, now)
        assert doc["first_seen_at"] == T0
        assert doc["last_seen_at"] == now and doc["last_run_id"] == run
        expected = {INSERTED: 1, UPDATED: version + 1}.get(outcome, version)
        assert doc["version"] == expected
        assert (archive is not None) == (outcome == UPDATED)
        if stored is not None:
            assert doc["urls"][: len(stored["urls"])] == stored["urls"]
        assert doc["urls"][-1] == f"u{step}"
        assert doc["content_hash"] == content_hash(doc)
        stored, version = doc, doc["version"]


@pytest.mark.parametrize("order", ["media first", "emnews first"])
def test_url_of_an_article_in_two_categories_does_not_depend_on_crawl_order(order):
    media = doc_of(url="https://finews.withounder.com/jiemian/2022/05/27/NW1.html")
    emnews = doc_of(url="https://finews.withounder.com/emnews/2022/05/27/NW1.html")
    first, second = (media, emnews) if order == "media first" else (emnews, media)
    stored, _, _ = merge(None, first, "r1", T0)
    doc, _, _ = merge(stored, second, "r1", T1)
    assert doc["url"] == emnews["url"]
    # and a later run reaching only the other post keeps it
    later, outcome, _ = merge(doc, media, "r2", T2)
    assert outcome == UNCHANGED and later["url"] == emnews["url"]
