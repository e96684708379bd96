"""Change a built replica between two crawls: updated articles, republished copies.

The site's publishing job rewrites posts (an **update**: same article id, new
text), and other media re-publish stories with small edits (near copies) or
none (exact copies). Both act on a built site folder (``posts/``,
``share/``, ``site.json``; see :mod:`newscrawl.replica.build`) and rebuild it
with :func:`~newscrawl.replica.build.build_site_from_posts`, which rewrites
only the pages whose bytes change, so a served replica shows the new
version at once.

- :func:`change_posts` replaces one sentence of chosen articles (in their
  posts and share documents) and returns the keys changed;
- :func:`republish` adds copies of chosen articles under new ids, in other
  media, with a known share of sentences edited, and returns them labelled.

Only plain body paragraphs are edited (``<p>`` + sentences, no markup, no
byline or source), so the edit is in the article's extracted ``body``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from newscrawl.replica.build import SHARE_DIR, build_site_from_posts
from newscrawl.replica.posts import SHANGHAI, Post, format_date, load_posts, write_post
from newscrawl.replica.reach import reachable_posts
from newscrawl.replica.share import share_code
from newscrawl.replica.site import Site, SiteConfig
from newscrawl.replica.textgen import TextGen

POSTS_DIR = "posts"
SITE_FILE = "site.json"
EXPECTED_FILE = "expected.jsonl"
#: a plain body paragraph: optional indent, text without markup, optional trailing space
_PLAIN_PARAGRAPH_RE = re.compile(r"<p>(?:　　|　)?([^<>]*?。)[ 　]*(?:&nbsp;)?</p>")
#: paragraphs holding these are bylines or source lines, not editable text
_NOT_TEXT = ("记者", "通讯员", "来源", "实习生", "电（")
_SENTENCE_RE = re.compile(r"[^。！？]*[。！？]")
#: sequence numbers of republished copies' ids (far above the generator's)
_COPY_SEQ = 9_900_000_000


@dataclass(frozen=True)
class Copy:
    """A republished article: its key, the key of the article it copies,
    the share of sentences edited (0: exact copy) and when it was published."""

    key: str
    of: str
    edit: float
    published_at: datetime


def _key(post: Post) -> str:
    return f"finews:{post.id}"


def _sentences(paragraph: str) -> list[str]:
    """
    >>> _sentences("甲。乙！丙")
    ['甲。', '乙！']
    """
    return _SENTENCE_RE.findall(paragraph)


def editable_paragraphs(body: str) -> list[str]:
    """The plain text paragraphs of a post body (inner text, as written).

    >>> editable_paragraphs("<p>□ 本报记者张三</p>\\n <p>　　今年以来。全区推进。 </p><p>短</p>")
    ['今年以来。全区推进。']
    """
    return [
        text
        for text in _PLAIN_PARAGRAPH_RE.findall(body)
        if len(_sentences(text)) >= 1 and not any(word in text for word in _NOT_TEXT)
    ]


def _load(site_dir: Path) -> tuple[list[Post], SiteConfig]:
    config = SiteConfig.load(site_dir / SITE_FILE)
    return load_posts(site_dir / POSTS_DIR), config


def _rebuild(site_dir: Path, now: datetime | None) -> None:
    build_site_from_posts(site_dir / POSTS_DIR, site_dir, now=now)


def _near_copies(site_dir: Path) -> set[str]:
    """Keys in a generator's near-copy group (from ``expected.jsonl``)."""
    path = site_dir / EXPECTED_FILE
    if not path.is_file():
        return set()
    keys: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line:
            continue
        record = json.loads(line)
        if record.get("near_duplicate_of"):
            keys |= {record["key"], f"finews:{record['near_duplicate_of']}"}
    return keys


def _candidates(posts: list[Post], config: SiteConfig, site_dir: Path) -> list[Post]:
    """Reachable single-post media articles with at least two editable sentences,
    outside the generator's near-copy groups, in file order."""
    per_id: dict[str, int] = {}
    for post in posts:
        per_id[post.id] = per_id.get(post.id, 0) + 1
    reached = reachable_posts(Site(posts, config))
    grouped = _near_copies(site_dir)
    out = []
    for post in posts:
        if not post.id.startswith("NW") or per_id[post.id] != 1 or id(post) not in reached:
            continue
        if _key(post) in grouped or " " in post.category or post.date is None:
            continue
        if sum(len(_sentences(p)) for p in editable_paragraphs(post.body)) >= 2:
            out.append(post)
    return sorted(out, key=lambda p: p.file_name)


def _new_sentence(text: TextGen, old: str) -> str:
    while True:
        sentence = text.sentence()
        if sentence != old:
            return sentence


def _replace_sentences(
    rng: random.Random, text: TextGen, body: str, count: int
) -> tuple[str, dict[str, str]]:
    """``body`` with ``count`` sentences of its plain paragraphs replaced;
    also returns old paragraph -> new paragraph."""
    paragraphs = editable_paragraphs(body)
    slots = [(i, j) for i, p in enumerate(paragraphs) for j in range(len(_sentences(p)))]
    chosen = set(rng.sample(slots, min(count, len(slots))))
    changed: dict[str, str] = {}
    for i, paragraph in enumerate(paragraphs):
        sentences = _sentences(paragraph)
        if not any((i, j) in chosen for j in range(len(sentences))):
            continue
        edited = [
            _new_sentence(text, s) if (i, j) in chosen else s for j, s in enumerate(sentences)
        ]
        changed[paragraph] = "".join(edited)
    for old, new in changed.items():
        body = body.replace(old, new, 1)
    return body, changed


def _update_share_doc(site_dir: Path, code: str, changed: dict[str, str]) -> None:
    """Apply the same paragraph changes to the code's share JSON, if it has one."""
    path = site_dir / SHARE_DIR / f"{code}.json"
    if not path.is_file():
        return
    doc = json.loads(path.read_text(encoding="utf-8"))
    for field in ("text", "content"):
        value = doc.get(field)
        if isinstance(value, str):
            for old, new in changed.items():
                value = value.replace(old, new)
            doc[field] = value
    path.write_text(json.dumps(doc, ensure_ascii=False, sort_keys=True), encoding="utf-8")


def change_posts(
    site_dir: Path,
    keys: Sequence[str] | None = None,
    *,
    count: int = 3,
    seed: int = 1,
    now: datetime | None = None,
) -> list[str]:
    """Update articles of a built site: one sentence of each is replaced (in
    every post of the article and in its share document), then the site is
    rebuilt (``now``: the rebuild's time, default the site's). ``keys``
    names the articles (``finews:<id>``); default ``count`` reachable media
    articles picked with ``seed``. Returns the keys changed, sorted."""
    site_dir = Path(site_dir)
    posts, config = _load(site_dir)
    if keys is None:
        pool = _candidates(posts, config, site_dir)
        keys = [_key(p) for p in random.Random(seed).sample(pool, min(count, len(pool)))]
    wanted = set(keys)
    rng = random.Random(seed)
    text = TextGen(rng)
    changed_keys: set[str] = set()
    for key in sorted(wanted):
        targets = [p for p in posts if _key(p) == key]
        if not targets:
            raise ValueError(f"no post of article {key} in {site_dir / POSTS_DIR}")
        _body, changed = _replace_sentences(rng, text, targets[0].body, 1)
        if not changed:
            raise ValueError(f"article {key} has no plain paragraph to change")
        for post in targets:
            new_body = post.body
            for old, new in changed.items():
                new_body = new_body.replace(old, new)
            write_post(replace(post, body=new_body), site_dir / POSTS_DIR)
        _update_share_doc(site_dir, targets[0].id, changed)
        changed_keys.add(key)
    _rebuild(site_dir, now)
    return sorted(changed_keys)


def republish(
    site_dir: Path,
    count: int,
    *,
    edits: Sequence[float] = (0.0, 0.1),
    seed: int = 1,
    now: datetime | None = None,
) -> list[Copy]:
    """Add ``count`` copies of reachable media articles, each in another
    media's category with a new id, published 7 to 95 minutes after the
    original (before it when that would be after the site's ``now``), with
    ``edits[i % len(edits)]`` of its body's sentences replaced (at least one
    when the share is above 0; 0 is an exact copy). The share links point at
    the copies' own ids; their share documents are made from the posts.
    Rebuilds the site and returns the copies."""
    site_dir = Path(site_dir)
    posts, config = _load(site_dir)
    pool = _candidates(posts, config, site_dir)
    rng = random.Random(seed)
    text = TextGen(rng)
    originals = rng.sample(pool, min(count, len(pool)))
    media = sorted({(p.tag_text, p.category) for p in pool})
    site_now = now or config.now
    copies: list[Copy] = []
    for number, original in enumerate(originals):
        assert original.date is not None
        share = edits[number % len(edits)]
        sentences = sum(len(_sentences(p)) for p in editable_paragraphs(original.body))
        edited = max(1, round(share * sentences)) if share > 0 else 0
        body, _changed = _replace_sentences(rng, text, original.body, edited)
        tag, category = rng.choice([m for m in media if m[1] != original.category])
        when = original.date + timedelta(minutes=rng.randint(7, 95))
        if when >= site_now:
            when = original.date - timedelta(minutes=rng.randint(7, 95))
        day = when.astimezone(SHANGHAI).strftime("%Y%m%d")
        code = f"NW{day}{_COPY_SEQ + number}"
        old_code = share_code(original.body)
        if old_code is not None:
            body = body.replace(f"infoCode={old_code}", f"infoCode={code}")
        body = body.replace(f"/category/{original.category}.html", f"/category/{category}.html")
        body = body.replace(f"/{original.category}/", f"/{category}/")
        body = re.sub(r"\[返回[^\]]*\]", f"[返回{tag}]", body, count=1)
        copy = replace(
            original,
            id=code,
            date=when,
            date_raw=format_date(when),
            categories=category.split(),
            tags=tag.split(),
            categories_raw=category,
            tags_raw=tag,
            body=body,
            file_name=f"{when.astimezone(SHANGHAI).strftime('%Y-%m-%d')}-{code}.md",
        )
        write_post(copy, site_dir / POSTS_DIR)
        copies.append(Copy(f"finews:{code}", _key(original), share, when))
    _rebuild(site_dir, now)
    return copies
