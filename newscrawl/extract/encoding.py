"""Which encoding a page's bytes are really in, when its labels disagree.

Scrapy decodes a response by its BOM, then the ``Content-Type`` charset,
then the ``<meta>`` charset, then auto-detection. That is right whenever the
labels are honest. It is wrong when a label lies: a header that says utf-8
over GBK bytes (a ``<meta charset="gbk">`` inside is never read), a page
template's ``<meta charset="UTF-8">`` left on a page saved as GBK, a header
that says gbk (or latin-1) over UTF-8 bytes. Each gives mojibake.

:func:`choose_encoding` looks at the bytes: valid UTF-8 (up to a stray bad
byte, e.g. a page cut inside a character) is UTF-8, whatever the labels say;
otherwise the first declared multi-byte charset that decodes the bytes
cleanly, else GB18030 (a superset of GBK and GB2312) when it does, else a
declared single-byte charset. It returns None when the current choice is
already right, so a middleware changes nothing for honest pages.
"""

from __future__ import annotations

import codecs
import functools
from collections.abc import Iterable

#: the CJK fallback: decodes GB2312, GBK and GB18030 bytes
GB18030 = "gb18030"
UTF8 = "utf-8"
#: bad sequences tolerated per 100 non-ASCII characters before a decoding counts as wrong
ERRORS_PER_100 = 1
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@functools.lru_cache(maxsize=64)
def codec_name(label: str | None) -> str | None:
    """The Python codec name of a charset label, None when unknown. GBK and
    GB2312 labels mean GB18030 (browsers do the same).

    >>> codec_name("GBK"), codec_name("gb2312"), codec_name("UTF8"), codec_name("x-nope")
    ('gb18030', 'gb18030', 'utf-8', None)
    """
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    if label in ("gbk", "gb2312", "gb_2312-80", "x-gbk", "cp936", "euc-cn"):
        return GB18030
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


@functools.lru_cache(maxsize=64)
def is_single_byte(name: str) -> bool:
    """Does every byte decode to one character on its own (latin-1, cp1252, …)?
    Such a codec decodes anything, so its success proves nothing.

    >>> is_single_byte("cp1252"), is_single_byte("latin-1"), is_single_byte("gb18030")
    (True, True, False)
    """
    high = bytes(range(0x80, 0x100))
    try:
        return len(high.decode(name, errors="replace")) == len(high)
    except (LookupError, UnicodeError, ValueError):
        return False


def decode_errors(body: bytes, name: str) -> tuple[int, int]:
    """(bad sequences, non-ASCII characters decoded) of ``body`` read as ``name``.

    >>> decode_errors("上海证券报".encode("gbk"), "utf-8")[0] > 0
    True
    >>> decode_errors("上海证券报".encode("gbk"), "gb18030")
    (0, 5)
    """
    try:
        text = body.decode(name, errors="replace")
    except (LookupError, ValueError):
        return len(body), 0
    bad = text.count("\ufffd")
    wide = len(text) - len(text.encode("ascii", errors="ignore")) - bad
    return bad, wide


def decodes_cleanly(body: bytes, name: str) -> bool:
    """At most one bad sequence per 100 non-ASCII characters (and at most one
    in a short text): a cut-off last character or a stray byte is tolerated,
    the wrong encoding is not.

    >>> page = ("正文" * 300).encode("utf-8")
    >>> decodes_cleanly(page[:-1], "utf-8"), decodes_cleanly(("正文" * 300).encode("gbk"), "utf-8")
    (True, False)
    """
    bad, wide = decode_errors(body, name)
    return bad <= max(1, wide * ERRORS_PER_100 // 100) and (bad == 0 or wide > 0)


def choose_encoding(body: bytes, current: str | None, declared: Iterable[str | None]) -> str | None:
    """The encoding to decode ``body`` with, or None when ``current`` (the one
    already chosen, e.g. Scrapy's) is right. ``declared``: the charset labels
    found (header, ``<meta>``), in any order.

    >>> gbk = '<meta charset="gbk"><h1>上海证券报</h1>'.encode("gbk")
    >>> choose_encoding(gbk, "utf-8", ["utf-8", "gbk"])  # header lies, meta is right
    'gb18030'
    >>> choose_encoding(gbk, "utf-8", [None, "UTF-8"])  # a template's meta lies
    'gb18030'
    >>> utf8 = "<h1>上海证券报</h1>".encode("utf-8")
    >>> choose_encoding(utf8, "gb18030", ["gbk"])  # header says gbk over UTF-8 bytes
    'utf-8'
    >>> choose_encoding(utf8, "utf-8", ["gbk"]) is None  # already right
    True
    >>> choose_encoding(b"<h1>ascii</h1>", "cp1252", []) is None
    True
    >>> choose_encoding("<h1>臺灣證券</h1>".encode("big5"), "big5hkscs", ["big5"]) is None
    True
    """
    if body.startswith(_BOMS):
        return None  # a BOM is never wrong; Scrapy honours it first
    current = codec_name(current)
    if body.isascii():
        return None
    if decodes_cleanly(body, UTF8):
        return None if current == UTF8 else UTF8
    names = [name for name in dict.fromkeys(map(codec_name, declared)) if name and name != UTF8]
    multi = [name for name in names if not is_single_byte(name)]
    single = [name for name in names if is_single_byte(name)]
    if current and current != UTF8 and not is_single_byte(current):
        multi.insert(0, current)  # an honest multi-byte label (big5, gb18030, ...) stays
    for name in dict.fromkeys([*multi, GB18030, *single]):
        if decodes_cleanly(body, name):
            if name == current or (current and is_single_byte(current) and name in single):
                return None  # Scrapy reads latin-1 labels as cp1252, as browsers do
            return name
    return None
