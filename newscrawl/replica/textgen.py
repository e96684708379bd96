"""Random but plausible Chinese news text for the generator (titles, sentences, names).

Everything is drawn from a ``random.Random`` the caller seeds, so a seed gives
the same text every time.
"""

from __future__ import annotations

import random
import re
from datetime import datetime

from newscrawl.replica import vocab

_SLOT_RE = re.compile(r"\{(\w+)\}")
_SENTENCE_END = "。！？"


def first_sentence(text: str) -> str:
    """Text up to and including the first 。！？ (the whole text when it has none).

    >>> first_sentence("甲。乙！"), first_sentence("无标点")
    ('甲。', '无标点')
    """
    for i, ch in enumerate(text):
        if ch in _SENTENCE_END:
            return text[: i + 1]
    return text


def strip_final_punctuation(text: str) -> str:
    """A sentence without its final 。！？ (a derived title).

    >>> strip_final_punctuation("霍尼韦尔宣布供货。")
    '霍尼韦尔宣布供货'
    """
    return text[:-1] if text and text[-1] in _SENTENCE_END else text


class TextGen:
    """Fills the vocabulary's templates; ``when`` is the article's date (for 月/日 slots)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.when: datetime | None = None

    def slot(self, name: str) -> str:
        rng = self.rng
        if name == "region":
            return rng.choice(vocab.REGIONS)
        if name == "topic":
            return rng.choice(vocab.TOPICS)
        if name in ("industry", "industry2"):
            return rng.choice(vocab.INDUSTRIES)
        if name == "company":
            return rng.choice(vocab.COMPANIES)[0]
        if name == "event":
            return rng.choice(vocab.EVENTS)
        if name == "org":
            return rng.choice(vocab.ORGS)
        if name == "indicator":
            return rng.choice(vocab.INDICATORS)
        if name == "role":
            return rng.choice(vocab.ROLES)
        if name == "quote":
            return rng.choice(vocab.QUOTES)
        if name == "month":
            return str(rng.randint(1, 12))
        if name == "date":
            when = self.when
            return (
                f"{when.month}月{when.day}日"
                if when
                else f"{rng.randint(1, 12)}月{rng.randint(1, 28)}日"
            )
        if name in ("n", "n2"):
            return str(rng.randint(12, 980))
        if name == "pct":
            return f"{rng.randint(1, 60)}.{rng.randint(0, 9)}"
        if name in ("small", "small2"):
            return str(rng.randint(2, 9))
        raise KeyError(name)

    def fill(self, template: str) -> str:
        return _SLOT_RE.sub(lambda m: self.slot(m[1]), template)

    def sentence(self, lead: bool = False) -> str:
        """One sentence; a ``lead`` sentence never opens with a quotation."""
        choices = [t for t in vocab.SENTENCES if not (lead and t.startswith("“"))]
        return self.fill(self.rng.choice(choices))

    def paragraph(self, sentences: int, lead: bool = False) -> list[str]:
        return [self.sentence(lead and i == 0) for i in range(sentences)]

    def title(self) -> str:
        return self.fill(self.rng.choice(vocab.TITLES))

    def cross_head(self) -> str:
        return self.fill(self.rng.choice(vocab.CROSS_HEADS))

    def name(self) -> str:
        """A 2-3 character name with a common (sometimes compound) surname."""
        rng = self.rng
        if rng.random() < 0.08:
            return rng.choice(vocab.SURNAMES_COMPOUND) + rng.choice(vocab.GIVEN_CHARS)
        given = rng.choice(vocab.GIVEN_CHARS)
        if rng.random() < 0.6:
            given += rng.choice(vocab.GIVEN_CHARS)
        return rng.choice(vocab.SURNAMES_SINGLE) + given

    def names(self, count: int) -> list[str]:
        out: list[str] = []
        while len(out) < count:
            candidate = self.name()
            if candidate not in out:
                out.append(candidate)
        return out
