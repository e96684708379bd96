"""The text two articles are compared on: their body, normalised.

Normalising removes what differs between copies of one story without
changing what it says: Unicode compatibility forms (full-width and
half-width letters and digits), case, whitespace, punctuation and symbols.
Chinese needs no word segmentation: the near-duplicate index works on
character n-grams of this text.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

#: everything but letters and digits: punctuation, spaces, symbols, controls
_NOT_ALNUM = re.compile(r"[\W_]+")


def normalize_text(text: str) -> str:
    """The body as compared for duplicates: letters and digits only (no
    whitespace, punctuation or symbols), NFKC (full-width letters and digits
    become ASCII), case-folded. Punctuation goes first: NFKC is slow, and
    Chinese text is rarely in NFKC only because of its full-width commas.

    >>> normalize_text("　　“以前，我手机里面有10多个微信工作群。” \\n Ｈｅｌｌｏ！")
    '以前我手机里面有10多个微信工作群hello'
    >>> normalize_text("增长3.5%") == normalize_text("增长 3.5 ％")
    True
    >>> normalize_text("１０ｋｇ，Ⅻ"), normalize_text("٣ ǅ")
    ('10kgxii', '٣dž')
    >>> normalize_text("")
    ''
    """
    kept = _NOT_ALNUM.sub("", text)
    if not unicodedata.is_normalized("NFKC", kept):  # the check is fast, NFKC is not
        kept = _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", kept))
    return kept.casefold()


def text_hash(normalized: str) -> str:
    """sha1 (hex) of a normalised text: equal hashes are exact duplicates.

    >>> text_hash(normalize_text("甲，乙。")) == text_hash(normalize_text("甲乙"))
    True
    >>> len(text_hash(""))
    40
    """
    return hashlib.sha1(normalized.encode("utf-8")).hexdigest()
