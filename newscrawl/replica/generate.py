"""Generate a realistic finews site: post files, share documents and the expected articles.

Deterministic from ``seed`` and ``now``. Each generated article gets a plan
(kind, media, time, byline form, source form, link forms, noise, broken
metadata, special roles), and the plan is written out twice at once: as
post file(s) in the publishing job's format and as the expected article
(ground truth by construction; nothing is parsed back from the output).

Variations and their rates (each at least 2 at N=300; see ``features`` in
the manifest for the counts of a build):

- media news (``NW`` + 18 digits, tag media+新闻, category = pinyin slug) and
  rolling news (18 digits, ``emnews``, 东财滚动新闻: one paragraph, headline
  only, digest + body, or digest only with the text in the share JSON), and
  a couple of site notices;
- every byline form of SITE.md with spacing variants, 通讯员 names run
  together, interns;
- source lines (plain, cut by markup, other paper), rolling news' trailing
  ``（央视新闻）``-style source, no source (expected: the tag's media name);
- cross-heads, hidden paragraphs, EM_StockImg chart blocks, stock and board
  links with empty quote holders, images with and without captions,
  entities, indents, trailing spaces, ``<br />`` inside paragraphs;
- the same article in a media category and ``emnews``; syndicated near
  copies (labelled ``near_duplicate_of``); empty titles, empty dates, the
  empty share link ``<>``; an orphan category nobody links to;
- link forms: alias host, ``http://``, ``//``, relative ``../x/``,
  ``?from=`` queries, folder-form categories and ``choicewzp1`` share links
  in older posts.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from newscrawl.replica import vocab
from newscrawl.replica.body import SPACINGS, BodyBuilder, BodyTruth, esc
from newscrawl.replica.posts import SHANGHAI, Post, format_date, post_path
from newscrawl.replica.share import make_doc
from newscrawl.replica.site import ALIAS_HOST, MAIN_HOST, OLD_SHARE_HOST, SHARE_HOST, SiteConfig
from newscrawl.replica.textgen import TextGen, first_sentence, strip_final_punctuation

ROLLING_SLUG = "emnews"
ROLLING_TAG = "东财滚动新闻"
NOTICE_SLUG = "sitenews"
NOTICE_TAG = "站长消息"
ORIGIN_HOSTS = (
    ("finance.eastmoney.com", "1344"),
    ("finance.eastmoney.com", "1350"),
    ("finance.eastmoney.com", "11060"),
    ("stock.eastmoney.com", "1611"),
    ("hk.eastmoney.com", "11362"),
    ("global.eastmoney.com", "1355"),
)
BYLINE_FORMS = (
    "box",
    "box_tongxunyuan",
    "tongxunyuan",
    "jizhe_two",
    "jizhe_tongxunyuan",
    "xinhua",
    "wen",
    "intern",
    "end",
)


@dataclass
class Plan:
    """What one generated article will be; filled in stages by :func:`_plan_site`."""

    index: int
    kind: str  # media | rolling | notice
    media: tuple[str, str] = ("", "")
    when: datetime = datetime(2022, 1, 1, tzinfo=SHANGHAI)
    code: str = ""
    form: str = "body"  # rolling: one_para | headline | digest_body | digest_only
    byline: str | None = None
    source: str = "em_media"  # em_media | cut | other | none | trailing
    share: str = "zning"  # zning | zning_https | choice | empty | origin | none
    back: str = "category"  # category | alias | http | folder | relative | query | none
    flags: set[str] = field(default_factory=set)
    empty_title: bool = False
    empty_date: bool = False
    two_category: bool = False
    orphan: bool = False
    group: int | None = None
    group_rank: int = 0
    notice: tuple[str, str, tuple[str, ...]] | None = None


@dataclass
class Generated:
    """The output of :func:`generate`: posts, share documents, expected articles."""

    posts: list[Post]
    share_docs: dict[str, dict[str, Any]]
    expected: list[dict[str, Any]]
    #: expected key -> file names of its posts (to mark reachability later)
    article_posts: dict[str, list[str]]
    features: Counter[str]
    config: SiteConfig


def _quota(n: int, rate: float, minimum: int = 2) -> int:
    return min(n, max(minimum, round(n * rate))) if n else 0


def _assign(
    rng: random.Random, plans: list[Plan], options: dict[str, float], default: str
) -> list[str]:
    """Spread categorical options over ``plans``: each option gets its quota (>= 2), the
    rest get ``default``; returned in the plans' order."""
    values: list[str] = []
    for option, rate in options.items():
        values += [option] * _quota(len(plans), rate)
    values = values[: len(plans)]
    values += [default] * (len(plans) - len(values))
    rng.shuffle(values)
    return values


def _pick(rng: random.Random, plans: list[Plan], rate: float, minimum: int = 2) -> list[Plan]:
    return rng.sample(plans, _quota(len(plans), rate, minimum))


def _media_weights() -> list[float]:
    return [1.0 / (1 + i) ** 0.6 for i in range(len(vocab.MEDIA))]


def _plan_site(rng: random.Random, articles: int, now: datetime, days: float) -> list[Plan]:
    n_notice = min(len(vocab.NOTICES), 2 + articles // 500) if articles >= 10 else 0
    rest = articles - n_notice
    n_rolling = round(rest * 0.35)
    plans = [Plan(i, "rolling") for i in range(n_rolling)]
    plans += [Plan(n_rolling + i, "media") for i in range(rest - n_rolling)]
    for i in range(n_notice):
        plans.append(Plan(rest + i, "notice", notice=vocab.NOTICES[i]))
    media = [p for p in plans if p.kind == "media"]
    rolling = [p for p in plans if p.kind == "rolling"]

    # times: uniform over the window, newest a few minutes before now
    span = timedelta(days=days).total_seconds()
    for p in plans:
        p.when = now - timedelta(seconds=rng.randint(300, int(span)))
    weights = _media_weights()
    for p in media:
        p.media = rng.choices(vocab.MEDIA, weights)[0]

    # special roles, on distinct media articles
    free = list(media)
    rng.shuffle(free)
    if articles >= 40 and len(free) >= 12:
        anchors, free = free[:5], free[5:]
        for p in anchors:  # the tag's newest posts, so the orphan's never reach the home page
            p.media = ("21世纪经济报道", "21shijijingjibaodao")
        n_orphan = max(2, articles // 100)
        orphans, free = free[:n_orphan], free[n_orphan:]
        start = now - timedelta(seconds=span)
        for i, p in enumerate(orphans):
            p.orphan = True
            p.media = vocab.ORPHAN_MEDIA
            p.when = start + timedelta(seconds=30 * (i + 1))
    n_two = _quota(len(free), 0.04) if len(free) >= 8 else 0
    for p in free[:n_two]:
        p.two_category = True
    free = free[n_two:]
    n_groups = max(2, round(articles * 0.02)) if len(free) >= 12 else 0
    for g in range(n_groups):
        size = rng.choice((2, 3, 3))
        members, free = free[:size], free[size:]
        names = rng.sample([m for m in vocab.MEDIA if " " not in m[0]], size)
        base = min(p.when for p in members)
        for rank, (p, m) in enumerate(zip(members, names, strict=True)):
            p.group, p.group_rank, p.media = g, rank, m
            p.when = min(
                base + timedelta(minutes=rank * rng.randint(7, 95)), now - timedelta(minutes=1)
            )
    ordinary_media = [p for p in media if p.group is None and not p.two_category]

    # older posts (the oldest 15% of the window) link categories in folder form
    by_time = sorted(plans, key=lambda p: p.when)
    old = {id(p) for p in by_time[: max(1, len(by_time) * 15 // 100)]}

    # media news features
    for p, form in zip(
        media, _assign(rng, media, {f: 0.083 for f in BYLINE_FORMS}, "none"), strict=True
    ):
        p.byline = None if form == "none" else form
    for p in media:
        if p.group is not None:
            p.byline = "xinhua"
    sources = _assign(rng, media, {"cut": 0.06, "none": 0.18, "other": 0.08}, "em_media")
    for p, src in zip(media, sources, strict=True):
        multiword = " " in p.media[0]
        p.source = "em_media" if multiword and src == "none" else src
        if p.group is not None:
            p.source = "other" if rng.random() < 0.6 else "em_media"
        if p.two_category and p.source == "none":
            p.source = "em_media"  # the emnews copy's tag must not decide the source
    shares = _assign(rng, media, {"zning_https": 0.04, "choice": 0.06}, "zning")
    backs = _assign(
        rng,
        media,
        {"alias": 0.05, "http": 0.05, "folder": 0.06, "relative": 0.05, "query": 0.05},
        "category",
    )
    for p, share, back in zip(media, shares, backs, strict=True):
        p.share, p.back = share, back
        if id(p) in old and p.back == "category":
            p.back = rng.choice(("folder", "relative", "folder"))
        if id(p) in old and p.share == "zning":
            p.share = "choice"
        if p.orphan:
            p.back = "category"
    flag_rates = {
        "hidden": 0.08,
        "stock_chart": 0.08,
        "stock": 0.2,
        "board": 0.1,
        "images": 0.15,
        "entity": 0.08,
        "indent": 0.1,
        "trailing": 0.15,
        "cross_head": 0.25,
        "cross_head_strong": 0.12,
        "br": 0.06,
        "inline": 0.3,
    }
    for flag, rate in flag_rates.items():
        for p in _pick(rng, media, rate):
            p.flags.add(flag)
    for p in _pick(rng, ordinary_media, 0.015):
        p.empty_title = True
    for p in _pick(rng, ordinary_media, 0.015):
        p.empty_date = True

    # rolling news features
    forms = _assign(
        rng, rolling, {"headline": 0.12, "digest_body": 0.33, "digest_only": 0.1}, "one_para"
    )
    for p, form in zip(rolling, forms, strict=True):
        p.form = form
        p.source = "none"
        p.share = "share" if form == "digest_only" else "origin"
        p.back = "relative" if id(p) in old else "emnews"
    one_para = [p for p in rolling if p.form == "one_para"]
    trailing = _pick(rng, one_para, 0.4, minimum=6)
    styles = _assign(rng, trailing, {str(i): 0.15 for i in range(len(vocab.ROLLING_SOURCES))}, "0")
    for p, style in zip(trailing, styles, strict=True):
        p.source = "trailing"
        p.flags.add(f"trailing_style_{style}")
    for p in _pick(rng, [q for q in one_para if q.source != "trailing"], 0.08):
        p.byline = "end"
    for p in _pick(rng, [q for q in rolling if q.form != "digest_only"], 0.06):
        p.back = "none"
    digest_body = [p for p in rolling if p.form in ("digest_body", "digest_only")]
    srcs = _assign(rng, digest_body, {"cut": 0.15, "none": 0.35}, "em_media")
    for p, src in zip(digest_body, srcs, strict=True):
        p.source = src
    for flag, rate in {"hidden": 0.2, "stock_chart": 0.2, "stock": 0.3, "images": 0.3}.items():
        for p in _pick(rng, digest_body, rate):
            p.flags.add(flag)
    for p in digest_body:
        p.flags.add("inline")
    for p in _pick(rng, [q for q in rolling if q.form == "digest_body"], 0.2):
        p.share = "empty"
    for p in _pick(rng, [q for q in rolling if q.form != "digest_only"], 0.015):
        p.empty_title = True
    for p in _pick(rng, [q for q in rolling if q.form == "digest_only"], 0.2, minimum=1):
        p.empty_title = True
    for p in _pick(rng, [q for q in rolling if q.form != "digest_only"], 0.015):
        p.empty_date = True

    # codes: date + a sequence that grows with time
    seq = 2_381_000_000 + rng.randint(0, 99_999)
    for p in sorted(plans, key=lambda q: (q.when, q.index)):
        if p.kind == "notice":
            continue
        seq += rng.randint(7, 4_000)
        day = p.when.astimezone(SHANGHAI).strftime("%Y%m%d")
        p.code = ("NW" if p.kind == "media" else "") + day + str(seq)
    return plans


# -- writing one article ------------------------------------------------------------


def _share_url(p: Plan) -> str:
    path = f"/html_News/NewsShare.html?infoCode={p.code}"
    if p.share == "zning_https":
        return f"https://{SHARE_HOST}{path}"
    if p.share == "choice":
        return f"http://{OLD_SHARE_HOST}{path}"
    return f"http://{SHARE_HOST}{path}"


def _origin_url(rng: random.Random, code: str) -> str:
    host, column = rng.choice(ORIGIN_HOSTS)
    return f"http://{host}/news/{column},{code}.html"


def _back_links(p: Plan, slug: str, tag: str) -> str:
    """The closing ``[返回…](…)｜[返回首页](…)`` line(s) of a post."""
    if p.back == "none":
        return ""
    if slug == ROLLING_SLUG and p.back in ("emnews", "category"):
        return f"[返回{tag}](//{MAIN_HOST}/{slug}/)｜[返回首页](//{MAIN_HOST}/)"
    if p.back == "relative":
        return f"[返回{tag}](../{slug}/)\n[返回首页](../)"
    cat = f"/category/{slug}.html"
    home_host = f"//{MAIN_HOST}"
    if p.back == "alias":
        home_host = f"https://{ALIAS_HOST}"
        target = f"{home_host}{cat}"
    elif p.back == "http":
        home_host = f"http://{MAIN_HOST}"
        target = f"{home_host}{cat}"
    elif p.back == "folder":
        target = f"//{MAIN_HOST}/{slug}/"
    elif p.back == "query":
        target = f"//{MAIN_HOST}{cat}?from=post"
    else:
        target = f"//{MAIN_HOST}{cat}"
    return f"[返回{tag}]({target})｜[返回首页]({home_host}/)"


def _article_body(
    rng: random.Random, text: TextGen, p: Plan, base: list[list[str]] | None
) -> tuple[str, BodyTruth]:
    """The HTML body of a media (or full rolling) article and its truth.

    ``base`` gives the paragraphs of a syndicated story (already edited).
    """
    layout = "inline" if "inline" in p.flags else rng.choice(("lines", "lines", "newline"))
    b = BodyBuilder(rng, text, layout)
    if "stock_chart" in p.flags and rng.random() < 0.5:
        b.stock_chart()
    elif "hidden" in p.flags and rng.random() < 0.5:
        b.hidden()
    if p.byline and p.byline != "end":
        b.byline(p.byline)
    paragraphs = (
        base
        if base is not None
        else [text.paragraph(rng.randint(1, 4), lead=(i == 0)) for i in range(rng.randint(3, 10))]
    )
    n = len(paragraphs)
    head_at = set()
    if n >= 4 and ("cross_head" in p.flags or "cross_head_strong" in p.flags):
        head_at = set(rng.sample(range(1, n), min(n - 1, rng.randint(1, 3))))
    image_at = (
        set(rng.sample(range(1, n), min(n - 1, rng.randint(1, 2))))
        if "images" in p.flags and n >= 2
        else set()
    )
    special = [i for i in range(1, n)]
    stock_at = rng.choice(special) if special and "stock" in p.flags else -1
    board_at = rng.choice(special) if special and "board" in p.flags else -1
    entity_at = rng.choice(special) if special and "entity" in p.flags else -1
    br_at = rng.choice(special) if special and "br" in p.flags else -1
    noise_at = rng.choice(special) if special else -1
    for i, sentences in enumerate(paragraphs):
        if i in head_at:
            b.cross_head(
                strong="cross_head_strong" in p.flags
                and ("cross_head" not in p.flags or rng.random() < 0.5)
            )
        if i in image_at:
            b.image(rng.choice((None, "source", "source", "tuwei", "tu")))
        if (
            i == noise_at
            and "stock_chart" in p.flags
            and "noise/stock_chart" not in b.truth.features
        ):
            b.stock_chart()
        if i == noise_at and "hidden" in p.flags and "noise/hidden" not in b.truth.features:
            b.hidden()
        pieces = b.pieces(sentences)
        if i == stock_at:
            pieces.append(b.stock_piece())
        if i == board_at:
            pieces.insert(0, b.board_piece())
        if i == entity_at:
            pieces.append(b.entity_piece())
        last = i == n - 1
        b.paragraph(
            pieces,
            indent="indent" in p.flags and rng.random() < 0.7,
            trailing="trailing" in p.flags and not last and rng.random() < 0.6,
            br=i == br_at and len(pieces) >= 2,
        )
    if p.byline == "end":
        b.append_to_last_paragraph(esc(b.end_byline(text.name(), rng.choice(SPACINGS))))
    if p.source in ("em_media", "other", "cut"):
        name = p.media[0] if p.media[0] else "上海证券报"
        if p.source == "other":
            name = (
                rng.choice(vocab.WIRE_MEDIA)
                if p.group is not None
                else rng.choice([m for m, _s in vocab.MEDIA if m != p.media[0] and " " not in m])
            )
            b.truth.features.add("source/other_paper")
        if p.source == "cut":
            name = rng.choice(vocab.CUT_SOURCES)[0]
        b.source_line(name, cut=p.source == "cut")
    return b.html(), b.truth


def _edit_story(
    rng: random.Random, text: TextGen, story: list[list[str]], rank: int
) -> list[list[str]]:
    """A syndicated copy: the story with one small edit (changed, added or removed sentence)."""
    copy = [list(par) for par in story]
    if rank == 0:
        return copy
    op = ("change", "add", "remove")[(rank + rng.randint(0, 2)) % 3]
    i = rng.randrange(1, len(copy)) if len(copy) > 1 else 0
    j = rng.randrange(len(copy[i]))
    if op == "change":
        copy[i][j] = text.sentence()
    elif op == "add":
        copy[i].insert(j, text.sentence())
    elif len(copy[i]) > 1:
        del copy[i][j]
    else:
        del copy[i]
    return copy


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _showtime(value: datetime) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def _post(p: Plan, title: str, slug: str, tag: str, body: str, folder: str = "") -> Post:
    day = p.when.astimezone(SHANGHAI).strftime("%Y-%m-%d")
    ident = p.code or (p.notice[0] if p.notice else str(p.index))
    name = f"undated-{ident}.md" if p.empty_date else f"{day}-{ident}.md"
    return Post(
        id=ident,
        title="" if p.empty_title else title,
        date=None if p.empty_date else p.when,
        date_raw="+0800" if p.empty_date else format_date(p.when),
        categories=slug.split(),
        tags=tag.split(),
        body=body,
        file_name=f"{folder}/{name}" if folder else name,
        categories_raw=slug,
        tags_raw=tag,
    )


def _write_notice(p: Plan) -> tuple[dict[str, Any], list[Post], set[str]]:
    assert p.notice is not None
    _ident, title, paragraphs = p.notice
    post = _post(p, title, NOTICE_SLUG, NOTICE_TAG, "\n" + "\n\n".join(paragraphs))
    url = f"https://{MAIN_HOST}{post_path(post)}"
    record = {
        "key": "finews:url:" + hashlib.sha1(url.encode()).hexdigest(),
        "kind": "notice",
        "info_code": None,
        "url": url,
        "title": title,
        "published_at": _utc(p.when),
        "published_at_source": "page",
        "derived_fields": [],
        "categories": [NOTICE_SLUG],
        "tags": [NOTICE_TAG],
        "source": None,
        "authors": [],
        "correspondents": [],
        "body": "\n".join(paragraphs),
        "summary": first_sentence(paragraphs[0]),
        "images": [],
        "share_url": None,
        "origin_url": None,
    }
    return record, [post], {"kind/notice"}


def _headline_text(rng: random.Random, title: str) -> str:
    line = title.replace(" ", "，")
    return line + rng.choice(("！", "？", "。"))


def _write(
    rng: random.Random,
    text: TextGen,
    p: Plan,
    stories: dict[int, tuple[str, list[list[str]]]],
    group_first: dict[int, str],
) -> tuple[dict[str, Any], list[Post], dict[str, Any] | None, set[str]]:
    """Write one planned article: its post(s), share document and expected record."""
    if p.kind == "notice":
        notice, notice_posts, notice_feats = _write_notice(p)
        return notice, notice_posts, None, notice_feats
    feats: set[str] = {f"kind/{p.kind}"}
    title = text.title()
    digest: str | None = None
    share_url: str | None = None
    origin_url: str | None = None
    doc: dict[str, Any] | None = None
    if p.kind == "media":
        slug, media_name = p.media[1], p.media[0]
        tag = media_name + "新闻"
        base = None
        if p.group is not None:
            if p.group not in stories:
                story = [
                    text.paragraph(rng.randint(2, 4), lead=(i == 0))
                    for i in range(rng.randint(4, 8))
                ]
                stories[p.group] = (title, story)
            title, story = stories[p.group]
            base = _edit_story(rng, text, story, p.group_rank)
            feats.add("role/syndicated")
        body_html, truth = _article_body(rng, text, p, base)
        share_url = _share_url(p)
        feats.add(f"share/{p.share}")
        feats.add(f"back/{p.back}")
        back = _back_links(p, slug, tag)
        body = f"{body_html}\n\n<{share_url}>" + (f"\n\n{back}" if back else "")
        doc = make_doc(p.code, title, _showtime(p.when), media_name, body_html)
        lines = truth.lines
        fallback_source = media_name
    else:
        slug, tag = ROLLING_SLUG, ROLLING_TAG
        fallback_source = ROLLING_TAG[: -len("新闻")]
        feats.add(f"rolling/{p.form}")
        back = _back_links(p, slug, tag)
        feats.add(f"back/{p.back}")
        if p.form in ("one_para", "headline"):
            truth = BodyTruth()
            if p.form == "headline":
                line = _headline_text(rng, title)
            else:
                line = "".join(text.paragraph(rng.randint(1, 3), lead=True))
            truth.lines = [line]
            md = line
            if p.source == "trailing":
                style = next(f for f in p.flags if f.startswith("trailing_style_"))
                open_, name, close = vocab.ROLLING_SOURCES[int(style.rsplit("_", 1)[1])]
                md += f"{open_}{name}{close}"
                truth.source = name
                feats.add("source/trailing_fullwidth" if open_ == "（" else "source/trailing_ascii")
                feats.add(f"source/trailing/{name}")
            if p.byline == "end":
                name = text.name()
                md += f"（记者{rng.choice(SPACINGS)}{name}）"
                truth.authors.append(name)
                feats.add("byline/end")
            origin_url = _origin_url(rng, p.code)
            body = f"\n{md}\n\n<{origin_url}>"
        else:
            p.media = rng.choice([m for m in vocab.MEDIA if " " not in m[0]])
            body_html, truth = _article_body(rng, text, p, None)
            digest = first_sentence(truth.lines[0])
            if truth.source and rng.random() < 0.3:
                digest += f"（{truth.source}）"
            if p.form == "digest_only":
                share_url = _share_url(p)
                doc = make_doc(p.code, title, _showtime(p.when), tag[:-2], body_html)
                body = f"> {digest}\n\n\n\n<{share_url}>"
            elif p.share == "empty":
                body = f"> {digest}\n\n{body_html}\n\n<>"
                feats.add("share/empty")
            else:
                origin_url = _origin_url(rng, p.code)
                body = f"> {digest}\n\n{body_html}\n\n<{origin_url}>"
        if back:
            body += f"\n\n{back}"
        lines = truth.lines

    posts = [_post(p, title, slug, tag, body)]
    if p.two_category:
        first = first_sentence(lines[0])
        emnews_back = (
            f"[返回{ROLLING_TAG}](//{MAIN_HOST}/{ROLLING_SLUG}/)｜[返回首页](//{MAIN_HOST}/)"
        )
        copy_body = f"> {first}\n\n{body_html}\n\n<{share_url}>\n\n{emnews_back}"
        posts.append(_post(p, title, ROLLING_SLUG, ROLLING_TAG, copy_body, folder=ROLLING_SLUG))
        feats.add("role/two_categories")
    if p.orphan:
        feats.add("role/orphan")
    feats |= truth.features

    derived: list[str] = []
    expected_title = title
    if p.empty_title:
        derived.append("title")
        feats.add("broken/empty_title_share" if doc is not None else "broken/empty_title_text")
        if doc is None:
            lead = digest if digest is not None else lines[0]
            expected_title = strip_final_punctuation(first_sentence(lead))
    published = _utc(p.when)
    published_source = "page"
    if p.empty_date:
        derived.append("published_at")
        if doc is not None:
            published_source = "share_json"
            feats.add("broken/empty_date_share")
        else:
            day = p.when.astimezone(SHANGHAI)
            published = _utc(datetime(day.year, day.month, day.day, tzinfo=SHANGHAI))
            published_source = "info_code"
            feats.add("broken/empty_date_code")
    paths = sorted(post_path(q) for q in posts)
    tags: list[str] = []
    for q in sorted(posts, key=post_path):
        tags += [t for t in q.tags if t not in tags]
    if p.group is not None:
        if p.group_rank == 0:
            group_first[p.group] = p.code
        else:
            feats.add("role/near_duplicate")
    record = {
        "key": f"finews:{p.code}",
        "kind": "news",
        "info_code": p.code,
        "url": f"https://{MAIN_HOST}{paths[0]}",
        "title": expected_title,
        "published_at": published,
        "published_at_source": published_source,
        "derived_fields": derived,
        "categories": sorted({q.category for q in posts}),
        "tags": tags,
        "source": truth.source or fallback_source,
        "authors": truth.authors,
        "correspondents": truth.correspondents,
        "body": "\n".join(lines),
        "summary": digest if digest is not None else first_sentence(lines[0]),
        "images": truth.images,
        "share_url": share_url,
        "origin_url": origin_url,
        "near_duplicate_of": group_first.get(p.group)
        if p.group is not None and p.group_rank
        else None,
    }
    if truth.source is None:
        feats.add("source/none")
    return record, posts, doc, feats


def _site_config(rng: random.Random, plans: list[Plan], now: datetime, seed: int) -> SiteConfig:
    """Hand-written category titles: mostly the tag, some ``Slug``-cased, a few wrong."""
    titles: dict[str, str] = {
        "dazhongribao": "光大证券研究新闻",
        ROLLING_SLUG: "Emnews",
        NOTICE_SLUG: "Sitenews",
    }
    tags = [m + "新闻" for m, _s in vocab.MEDIA]
    for name, slug in (*vocab.MEDIA, vocab.ORPHAN_MEDIA):
        if slug in titles:
            continue
        roll = rng.random()
        if roll < 0.1:
            titles[slug] = slug.title()
        elif roll < 0.2:
            titles[slug] = rng.choice([t for t in tags if t != name + "新闻"])
        else:
            titles[slug] = name + "新闻"
    return SiteConfig(now=now, category_titles=titles, link_salt=f"seed-{seed}")


def generate(articles: int, seed: int, now: datetime, days: float = 3.0) -> Generated:
    """Plan and write ``articles`` articles (news and notices) for a site as of ``now``."""
    rng = random.Random(seed)
    text = TextGen(rng)
    now = now.astimezone(SHANGHAI).replace(microsecond=0)
    plans = _plan_site(rng, articles, now, days)
    posts: list[Post] = []
    docs: dict[str, dict[str, Any]] = {}
    expected: list[dict[str, Any]] = []
    article_posts: dict[str, list[str]] = {}
    features: Counter[str] = Counter()
    stories: dict[int, tuple[str, list[list[str]]]] = {}
    group_first: dict[int, str] = {}
    for p in sorted(plans, key=lambda q: (q.when, q.group_rank, q.index)):
        text.when = p.when.astimezone(SHANGHAI)
        record, post_list, doc, feats = _write(rng, text, p, stories, group_first)
        posts += post_list
        if doc is not None:
            docs[doc["infoCode"]] = doc
        expected.append(record)
        article_posts[record["key"]] = [q.file_name for q in post_list]
        features.update(feats)
    config = _site_config(rng, plans, now, seed)
    return Generated(posts, docs, expected, article_posts, features, config)
