"""Synthetic labelled articles for measuring duplicate detection (tests, benchmark).

Texts are sentences of pseudo-words drawn from a Zipf-like vocabulary of
common CJK characters, so unrelated articles share few n-grams, as real
ones do (the replica generator's few sentence templates make every pair of
its articles look alike, which is no ground for measuring at scale). Each
set holds:

- originals: independent stories;
- copies: an original re-published later (occasionally earlier) with a
  known share of its sentences edited (replaced, added or removed); share 0
  is an exact copy. A copy's label is its original;
- related: a different story quoting a known share of an original's
  sentences (a shared press release): not a duplicate.

Deterministic for a seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: the common CJK block the pseudo-words are made of
_CJK_FIRST, _CJK_LAST = 0x4E00, 0x9FA5
DEFAULT_EDITS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3)
#: copies with at most this share of sentences edited are near duplicates
SMALL_EDIT = 0.2
_START = datetime(2022, 2, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Synthetic:
    """One synthetic article and its label."""

    key: str
    body: str
    published_at: datetime
    #: the original this article copies (None: an original or related story)
    copy_of: str | None = None
    #: share of the original's sentences edited in this copy
    edit: float = 0.0
    #: the original whose sentences this related story quotes
    quotes: str | None = None


class Vocabulary:
    """Pseudo-words of 1-4 characters with Zipf-like frequencies."""

    def __init__(self, rng: random.Random, words: int = 20_000, chars: int = 3_000) -> None:
        alphabet = rng.sample(range(_CJK_FIRST, _CJK_LAST + 1), chars)
        lengths = (1, 2, 2, 2, 3, 3, 4)
        self.words = [
            "".join(chr(rng.choice(alphabet)) for _ in range(rng.choice(lengths)))
            for _ in range(words)
        ]
        weights = [1.0 / (rank + 1) ** 0.9 for rank in range(words)]
        total = 0.0
        self.cumulative: list[float] = []
        for weight in weights:
            total += weight
            self.cumulative.append(total)

    def sentence(self, rng: random.Random) -> str:
        """8 to 24 words, with a comma or two, ending in 。

        >>> vocab = Vocabulary(random.Random(1), words=50, chars=40)
        >>> text = vocab.sentence(random.Random(2))
        >>> text.endswith("。"), 8 <= len(text) <= 24 * 5
        (True, True)
        """
        count = rng.randint(8, 24)
        words = rng.choices(self.words, cum_weights=self.cumulative, k=count)
        for at in sorted(rng.sample(range(2, count - 1), rng.randint(0, 2)), reverse=True):
            words.insert(at, "，")
        return "".join(words) + "。"


def story(rng: random.Random, vocab: Vocabulary) -> list[str]:
    """The sentences of one original: 8 to 30 sentences."""
    return [vocab.sentence(rng) for _ in range(rng.randint(8, 30))]


def edit_sentences(
    rng: random.Random, vocab: Vocabulary, sentences: Sequence[str], share: float
) -> list[str]:
    """A copy with ``round(share * len)`` sentences edited (at least one when
    ``share`` > 0): each edit replaces, inserts or removes one sentence.

    >>> vocab = Vocabulary(random.Random(1), words=200, chars=100)
    >>> base = [vocab.sentence(random.Random(i)) for i in range(20)]
    >>> edit_sentences(random.Random(3), vocab, base, 0.0) == base
    True
    >>> copy = edit_sentences(random.Random(3), vocab, base, 0.2)
    >>> 14 <= len(set(copy) & set(base)) <= 18
    True
    """
    out = list(sentences)
    edits = max(1, round(share * len(out))) if share > 0 else 0
    for _ in range(edits):
        op = rng.choice(("replace", "replace", "insert", "remove")) if len(out) > 2 else "insert"
        at = rng.randrange(len(out))
        if op == "replace":
            out[at] = vocab.sentence(rng)
        elif op == "insert":
            out.insert(at, vocab.sentence(rng))
        else:
            del out[at]
    return out


def _body(rng: random.Random, sentences: Sequence[str]) -> str:
    """Sentences grouped into paragraphs, one per line."""
    paragraphs: list[str] = []
    current: list[str] = []
    for sentence in sentences:
        current.append(sentence)
        if len(current) >= rng.randint(2, 5):
            paragraphs.append("".join(current))
            current = []
    if current:
        paragraphs.append("".join(current))
    return "\n".join(paragraphs)


def labelled_set(
    originals: int,
    *,
    seed: int = 1,
    copy_rate: float = 0.2,
    related_rate: float = 0.05,
    edits: Sequence[float] = DEFAULT_EDITS,
    quote_share: float = 0.3,
) -> Iterator[Synthetic]:
    """``originals`` stories; after each, with probability ``copy_rate`` a
    copy (edit share drawn from ``edits``), and with ``related_rate`` a
    related story quoting ``quote_share`` of its sentences. Yielded in
    crawl order: a copy usually after its original, sometimes before it
    (1 in 10), to exercise re-pointing.

    >>> items = list(labelled_set(200, seed=5))
    >>> originals = [a for a in items if a.copy_of is None and a.quotes is None]
    >>> len(originals), 20 <= sum(1 for a in items if a.copy_of) <= 60
    (200, True)
    >>> all(a.published_at > {o.key: o for o in originals}[a.copy_of].published_at
    ...     for a in items if a.copy_of)
    True
    """
    rng = random.Random(seed)
    vocab = Vocabulary(rng)
    for number in range(originals):
        when = _START + timedelta(seconds=rng.randint(0, 90 * 86_400))
        sentences = story(rng, vocab)
        original = Synthetic(f"syn:{number}", _body(rng, sentences), when)
        extra: list[Synthetic] = []
        if rng.random() < copy_rate:
            share = rng.choice(list(edits))
            copied = edit_sentences(rng, vocab, sentences, share)
            later = when + timedelta(minutes=rng.randint(5, 600))
            extra.append(
                Synthetic(f"syn:{number}:copy", _body(rng, copied), later, original.key, share)
            )
        if rng.random() < related_rate:
            quoted = rng.sample(sentences, max(1, round(quote_share * len(sentences))))
            own = story(rng, vocab)
            mixed = own + quoted
            rng.shuffle(mixed)
            later = when + timedelta(minutes=rng.randint(5, 600))
            extra.append(
                Synthetic(f"syn:{number}:related", _body(rng, mixed), later, quotes=original.key)
            )
        if extra and rng.random() < 0.1:
            yield from extra
            yield original
        else:
            yield original
            yield from extra
