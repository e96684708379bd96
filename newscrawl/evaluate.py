"""Score a crawl against a replica's expected articles: per-field accuracy.

Pure functions (documents and expected records in, scores out); the
``newscrawl eval`` command builds the replica, crawls it and calls them.

- :func:`bigram_f1`: character-bigram F1 of two texts (the body score);
- :func:`field_matches`: is one field of a stored document right;
- :func:`score`: every field of every document, missing and unexpected
  articles counted as wrong for every field, per variation too;
- :func:`variation_labels`: which byline / source / kind form a post file
  uses, read from the post file itself (not from the extractor);
- :func:`format_table`: the report a person reads.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: fields scored by exact match, each with its target (share of articles right)
EXACT_FIELDS = (
    "title",
    "published_at",
    "categories",
    "source",
    "authors",
    "correspondents",
    "images",
    "summary",
)
BODY = "body"
TARGETS: dict[str, float] = {**dict.fromkeys(EXACT_FIELDS, 0.99), BODY: 0.99}
#: also compared and reported, without a target
INFO_FIELDS = (
    "kind",
    "info_code",
    "url",
    "tags",
    "derived_fields",
    "published_at_source",
    "share_url",
    "origin_url",
)
#: fields whose order carries no meaning (merged over every page that lists the article)
UNORDERED = frozenset({"categories", "tags"})
#: examples of wrong values kept per field
EXAMPLES = 5
SHOWN_CHARS = 100


def char_bigrams(text: str) -> Counter[str]:
    """The multiset of character bigrams; a one-character text is its own unit.

    >>> sorted(char_bigrams("上海上海").items())
    [('上海', 2), ('海上', 1)]
    >>> char_bigrams("A"), char_bigrams("")
    (Counter({'A': 1}), Counter())
    """
    if len(text) < 2:
        return Counter([text] if text else [])
    return Counter(text[i : i + 2] for i in range(len(text) - 1))


def bigram_f1(got: str, want: str) -> float:
    """F1 of the character bigrams of ``got`` against ``want`` (1.0 = same text,
    up to the order of repeated passages; two empty texts agree).

    >>> bigram_f1("今天天气很好", "今天天气很好")
    1.0
    >>> round(bigram_f1("今天天气很好", "今天天气不好"), 3)
    0.6
    >>> bigram_f1("", ""), bigram_f1("正文", ""), bigram_f1("", "正文")
    (1.0, 0.0, 0.0)
    """
    a, b = char_bigrams(got), char_bigrams(want)
    total = sum(a.values()) + sum(b.values())
    if total == 0:
        return 1.0
    return 2 * sum((a & b).values()) / total


def normalize(name: str, value: Any) -> Any:
    """A field's value in comparable form: dates as ISO UTC ``Z`` strings, None
    lists as empty, unordered lists sorted.

    >>> from datetime import timedelta, timezone
    >>> shanghai = timezone(timedelta(hours=8))
    >>> normalize("published_at", datetime(2022, 2, 18, 10, 1, 44, tzinfo=shanghai))
    '2022-02-18T02:01:44Z'
    >>> normalize("published_at", datetime(2022, 2, 18, 2, 1, 44))
    '2022-02-18T02:01:44Z'
    >>> normalize("categories", ["b", "a"]), normalize("authors", None)
    (['a', 'b'], [])
    """
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if value is None and name in ("categories", "tags", "authors", "correspondents", "images"):
        return []
    if name in UNORDERED and isinstance(value, list):
        return sorted(value, key=str)
    return value


def field_matches(name: str, got: Any, want: Any) -> bool:
    """Is a stored value right? Exact after :func:`normalize`.

    >>> field_matches("categories", ["b", "a"], ["a", "b"])
    True
    >>> field_matches("authors", ["赵峰", "顿星亮"], ["顿星亮", "赵峰"])
    False
    >>> field_matches("source", None, "大众日报")
    False
    """
    return bool(normalize(name, got) == normalize(name, want))


@dataclass
class VariationScore:
    """Scores of the articles that share one variation label."""

    articles: int = 0
    all_right: int = 0
    body_f1: float = 0.0
    wrong: Counter[str] = field(default_factory=Counter)

    def add(self, wrong_fields: Iterable[str], f1: float) -> None:
        wrong = list(wrong_fields)
        self.articles += 1
        self.all_right += not wrong
        self.body_f1 += f1
        self.wrong.update(wrong)


@dataclass
class EvalResult:
    """Per-field counts over the scored articles (reachable expected articles
    plus unexpected stored documents)."""

    expected: int = 0
    stored: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    correct: Counter[str] = field(default_factory=Counter)
    body_f1_sum: float = 0.0
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    by_variation: dict[str, dict[str, VariationScore]] = field(default_factory=dict)

    @property
    def scored(self) -> int:
        """Articles every field is scored over: expected ones and unexpected documents."""
        return self.expected + len(self.unexpected)

    def accuracy(self, name: str) -> float:
        """Share of scored articles with ``name`` right (the body: mean bigram F1)."""
        if self.scored == 0:
            return 0.0
        if name == BODY:
            return self.body_f1_sum / self.scored
        return self.correct[name] / self.scored

    def failures(self) -> list[str]:
        """Fields under their target (an empty crawl fails them all)."""
        return [name for name, target in TARGETS.items() if self.accuracy(name) < target]

    def to_json(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "stored": self.stored,
            "scored": self.scored,
            "missing": len(self.missing),
            "unexpected": len(self.unexpected),
            "missing_keys": self.missing[:50],
            "unexpected_keys": self.unexpected[:50],
            "fields": {
                name: {"accuracy": round(self.accuracy(name), 6), "target": TARGETS.get(name)}
                for name in (*EXACT_FIELDS, BODY, *INFO_FIELDS)
            },
            "body_metric": "mean character-bigram F1",
            "failures": self.failures(),
            "examples": self.examples,
            "by_variation": {
                group: {
                    label: {
                        "articles": v.articles,
                        "all_right": v.all_right,
                        "body_f1": round(v.body_f1 / v.articles, 6) if v.articles else 0.0,
                        "wrong": dict(v.wrong),
                    }
                    for label, v in sorted(labels.items())
                }
                for group, labels in sorted(self.by_variation.items())
            },
        }


def _shown(value: Any) -> Any:
    if isinstance(value, str) and len(value) > SHOWN_CHARS:
        return value[:SHOWN_CHARS] + "…"
    return value


def _example(result: EvalResult, name: str, key: str, got: Any, want: Any) -> None:
    kept = result.examples.setdefault(name, [])
    if len(kept) < EXAMPLES:
        kept.append({"key": key, "got": _shown(got), "want": _shown(want)})


def score(
    docs: Iterable[Mapping[str, Any]],
    expected: Mapping[str, Mapping[str, Any]],
    labels: Mapping[str, Mapping[str, str]] | None = None,
) -> EvalResult:
    """Score stored documents (``_id`` = article key) against the expected
    articles that should have been stored, by key. A missing article and an
    unexpected document count as wrong for every field (body F1 0).
    ``labels`` (key -> {group: label}) adds per-variation scores.

    >>> want = {"finews:1": {"title": "标题", "body": "正文一句。", "authors": ["张三"]}}
    >>> result = score([{"_id": "finews:1", "title": "标题", "body": "正文一句。"}], want)
    >>> result.accuracy("title"), result.accuracy("authors"), result.accuracy("body")
    (1.0, 0.0, 1.0)
    >>> result.failures()
    ['authors']
    >>> score([], want).missing, score([{"_id": "x"}], {}).unexpected
    (['finews:1'], ['x'])
    """
    result = EvalResult(expected=len(expected))
    labels = labels or {}
    seen: set[str] = set()
    for doc in docs:
        key = str(doc.get("_id"))
        result.stored += 1
        want = expected.get(key)
        if want is None or key in seen:
            result.unexpected.append(key)
            continue
        seen.add(key)
        wrong = []
        for name in (*EXACT_FIELDS, *INFO_FIELDS):
            if field_matches(name, doc.get(name), want.get(name)):
                result.correct[name] += 1
            else:
                if name in EXACT_FIELDS:
                    wrong.append(name)
                _example(result, name, key, normalize(name, doc.get(name)), want.get(name))
        f1 = bigram_f1(str(doc.get(BODY) or ""), str(want.get(BODY) or ""))
        result.body_f1_sum += f1
        if doc.get(BODY) != want.get(BODY):
            wrong.append(BODY)
            _example(result, BODY, key, doc.get(BODY), want.get(BODY))
        _by_variation(result, labels.get(key, {}), wrong, f1)
    for key in expected:
        if key not in seen:
            result.missing.append(key)
            _by_variation(result, labels.get(key, {}), ["missing"], 0.0)
    return result


def _by_variation(
    result: EvalResult, labels: Mapping[str, str], wrong: list[str], f1: float
) -> None:
    for group, label in labels.items():
        result.by_variation.setdefault(group, {}).setdefault(label, VariationScore()).add(wrong, f1)


# -- variation labels, from the post file ---------------------------------------

_ARTICLE_ID = re.compile(r"(NW)?\d{18}")
_FRONT = re.compile(r"\A---\n(?P<front>.*?)\n---\n?(?P<body>.*)\Z", re.S)
_BYLINES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("xinhua", re.compile(r"新华社\S{0,12}?电（记者")),
    ("wen", re.compile(r"文/记者")),
    ("intern", re.compile(r"实习生")),
    ("box_tongxunyuan", re.compile(r"□\s*本报记者[\s\S]{0,40}?本报通讯员")),
    ("box", re.compile(r"□\s*本报记者")),
    ("tongxunyuan", re.compile(r"<p>本报通讯员")),
    ("jizhe_tongxunyuan", re.compile(r"本报记者[^<]{0,20}通讯员")),
    ("jizhe_two", re.compile(r"<p>记者[^<，。：:]{2,16}</p>")),
    ("end", re.compile(r"（记者[\s　]*[^（）<\s　]{2,4}）")),
)
_TRAILING_SOURCE = re.compile(r"[（(](?!记者)[^（）()<>\s　]{2,12}[）)]\s*$", re.M)


def post_ident(file_name: str) -> str:
    """A post file's id: its name without folder, date (or ``undated-``) and ``.md``.

    >>> post_ident("emnews/2022-05-24-202205242381090615.md"), post_ident("undated-NW1.md")
    ('202205242381090615', 'NW1')
    """
    stem = file_name.rsplit("/", 1)[-1].removesuffix(".md")
    return stem[len("undated-") :] if stem.startswith("undated-") else stem[len("2022-05-24-") :]


def variation_labels(file_name: str, text: str) -> dict[str, str]:
    """The variations a post file shows: ``kind`` (media / rolling /
    rolling_digest / notice), ``byline`` form (none when absent), ``source``
    form (line, line_cut, trailing, tag) and ``broken`` metadata.

    >>> post = '''---
    ... title: ""
    ... date:  +0800
    ... categories: dazhongribao
    ... ---
    ... <p>□ 本报记者张环泽</p><p>本报通讯员赵峰顿星亮</p><p>正文。</p>
    ... <p class="em_media">（文章来源：上海<span><a>证券</a></span>报）</p>'''
    >>> labels = variation_labels("undated-NW202202182281010830.md", post)
    >>> labels["kind"], labels["byline"], labels["source"], labels["broken"]
    ('media', 'box_tongxunyuan', 'line_cut', 'empty_title+empty_date')
    >>> rolling = '---\\ntitle: "x"\\ndate: 2021-12-08 10:46:18\\n---\\n\\n某事。（央视新闻）\\n\\n<http://a/>'
    >>> variation_labels("2021-12-08-202112082207168450.md", rolling)
    {'kind': 'rolling', 'byline': 'none', 'source': 'trailing', 'broken': 'none'}
    """
    match = _FRONT.match(text)
    front, body = (match["front"], match["body"]) if match else ("", text)
    ident = post_ident(file_name)
    if not _ARTICLE_ID.fullmatch(ident):
        kind = "notice"
    elif ident.startswith("NW"):
        kind = "media"
    else:
        kind = "rolling_digest" if body.lstrip("\n").startswith(">") else "rolling"
    byline = next((name for name, pattern in _BYLINES if pattern.search(body)), "none")
    if "（文章来源：" in body:
        line = body[body.index("（文章来源：") :].split("）", 1)[0]
        source = "line_cut" if "<" in line else "line"
    elif _TRAILING_SOURCE.search(body.split("\n\n<", 1)[0]):
        source = "trailing"
    else:
        source = "tag"
    broken = [
        name
        for name, pattern in (
            ("empty_title", r'^title:\s*(""|\'\')?\s*$'),
            ("empty_date", r"^date:\s*([+-]\d{4})?\s*$"),
        )
        if re.search(pattern, front, re.M)
    ]
    return {
        "kind": kind,
        "byline": byline,
        "source": source,
        "broken": "+".join(broken) if broken else "none",
    }


# -- the report ----------------------------------------------------------------------


def format_table(result: EvalResult, *, variations: bool = True) -> str:
    """The per-field table, the article counts, per-variation lines and examples.

    >>> want = {"finews:1": {"title": "标题", "body": "正文。"}}
    >>> result = score([{"_id": "finews:1", "title": "错", "body": "正文。"}], want)
    >>> print(format_table(result))  # doctest: +ELLIPSIS
    field                accuracy  target
    title                  0.0000    0.99  UNDER TARGET
    published_at           1.0000    0.99  ok
    categories             1.0000    0.99  ok
    source                 1.0000    0.99  ok
    authors                1.0000    0.99  ok
    correspondents         1.0000    0.99  ok
    images                 1.0000    0.99  ok
    summary                1.0000    0.99  ok
    body (bigram F1)       1.0000    0.99  ok
    also compared: kind 1.0000, info_code 1.0000, url 1.0000, ..., origin_url 1.0000
    articles: 1 expected, 1 stored, 0 missing, 0 unexpected (both count as wrong for every field)
    <BLANKLINE>
    wrong values (first of each field):
      title        finews:1  got '错'  want '标题'
    """
    lines = [f"{'field':<20} {'accuracy':>8}  {'target':>6}"]
    for name in (*EXACT_FIELDS, BODY):
        shown = "body (bigram F1)" if name == BODY else name
        value, target = result.accuracy(name), TARGETS[name]
        verdict = "ok" if value >= target else "UNDER TARGET"
        lines.append(f"{shown:<20} {value:>8.4f}  {target:>6.2f}  {verdict}")
    lines.append(
        "also compared: " + ", ".join(f"{name} {result.accuracy(name):.4f}" for name in INFO_FIELDS)
    )
    lines.append(
        f"articles: {result.expected} expected, {result.stored} stored, "
        f"{len(result.missing)} missing, {len(result.unexpected)} unexpected "
        "(both count as wrong for every field)"
    )
    if variations and result.by_variation:
        lines += ["", f"{'variation':<28} {'articles':>8} {'all right':>9} {'body F1':>8}  wrong"]
        for group, labels in sorted(result.by_variation.items()):
            for label, v in sorted(labels.items()):
                wrong = ", ".join(f"{k} {n}" for k, n in v.wrong.most_common()) or "-"
                lines.append(
                    f"{group + '/' + label:<28} {v.articles:>8} "
                    f"{v.all_right / v.articles:>9.4f} {v.body_f1 / v.articles:>8.4f}  {wrong}"
                )
    if result.examples:
        lines += ["", "wrong values (first of each field):"]
        for name, kept in result.examples.items():
            first = kept[0]
            lines.append(
                f"  {name:<12} {first['key']}  got {first['got']!r}  want {first['want']!r}"
            )
    if result.missing:
        lines.append(f"missing (first 5): {', '.join(result.missing[:5])}")
    if result.unexpected:
        lines.append(f"unexpected (first 5): {', '.join(result.unexpected[:5])}")
    return "\n".join(lines)


def expected_articles(records: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The records a crawl should store, by key: ``storable`` ones (a replica
    with a fault plan), else ``reachable`` ones (from the home page).

    >>> rows = [{"key": "a", "reachable": True}, {"key": "b", "reachable": False},
    ...         {"key": "c", "reachable": True, "storable": False}, {"key": "d"}]
    >>> sorted(expected_articles(rows))
    ['a', 'd']
    """
    return {
        str(r["key"]): r
        for r in records
        if r.get("storable", r.get("reachable", True)) is not False
    }


def site_labels(
    posts_dir: Path, records: Iterable[Mapping[str, Any]], article_posts: Mapping[str, list[str]]
) -> dict[str, dict[str, str]]:
    """Variation labels of a built replica's articles, from their post files:
    the first file the build lists for the article, else the file named after
    the URL's last segment (the real sample posts)."""
    by_ident: dict[str, Path] = {}
    for path in sorted(posts_dir.rglob("*.md"), key=lambda p: (len(p.parts), p.name)):
        by_ident.setdefault(post_ident(path.name), path)
    labels: dict[str, dict[str, str]] = {}
    for record in records:
        key = str(record["key"])
        names = article_posts.get(key)
        if names:
            path = posts_dir / names[0]
        else:
            ident = str(record.get("url") or "").rsplit("/", 1)[-1].removesuffix(".html")
            found = by_ident.get(ident)
            if found is None:
                continue
            path = found
        if path.is_file():
            labels[key] = variation_labels(
                str(path.relative_to(posts_dir)), path.read_text("utf-8")
            )
    for record in records:
        faults = record.get("faults")
        if isinstance(faults, list):  # a replica with a fault plan: which faults touch it
            kinds = sorted({str(kind) for kind in faults})
            labels.setdefault(str(record["key"]), {})["fault"] = "+".join(kinds) or "none"
    return labels
