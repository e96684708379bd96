"""Text utilities shared by the extractors: line cleaning and sentences.

The site writes paragraphs with full-width indents (``　　``), NBSPs and
trailing spaces; the article fields want each line stripped of them while the
spaces *inside* a line stay as written (a Latin phrase keeps its spaces).
"""

from __future__ import annotations

import re

#: what is stripped from both ends of a line: ASCII and full-width spaces,
#: NBSP, zero-width characters and the BOM
EDGE_SPACE = " \t\r\n\f\v\u3000\xa0\u2002\u2003\u2009\u200b\u200c\u200d\u2060\ufeff"
_ZERO_WIDTH_RE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_SENTENCE_END_RE = re.compile("[。！？]")
_FINAL_PUNCT = "。！？!?.…；;，,：:"
_NEWLINES_RE = re.compile(r"[\r\n]+")


def clean_line(text: str) -> str:
    """One line of text as the fields store it: ends stripped of every kind of
    space, inner NBSPs turned into plain spaces, zero-width characters gone,
    source line breaks (HTML whitespace) turned into spaces.

    >>> clean_line("\\u3000\\u3000今年以来，峄城区纪委监委 \\xa0")
    '今年以来，峄城区纪委监委'
    >>> clean_line(" ViacomCBS和 CJ\\xa0ENM ")
    'ViacomCBS和 CJ ENM'
    >>> clean_line("a\\u200bb\\nc")
    'ab c'
    """
    text = _ZERO_WIDTH_RE.sub("", text)
    text = _NEWLINES_RE.sub(" ", text).replace("\xa0", " ")
    return text.strip(EDGE_SPACE)


def clean_lines(text: str) -> list[str]:
    """Split on ``\\n`` (a ``<br>`` already turned into one), clean each line,
    drop the empty ones.

    >>> clean_lines("\\u3000第一行 \\n\\n  \\n第二行")
    ['第一行', '第二行']
    """
    lines = (clean_line(line) for line in text.split("\n"))
    return [line for line in lines if line]


def first_sentence(text: str) -> str:
    """The first paragraph (line) up to and including its first ``。``, ``！``
    or ``？``; the whole first line when it has none.

    >>> first_sentence("“股王”茅台重回2000元关口！酿酒板块多股大涨，大行情要来？")
    '“股王”茅台重回2000元关口！'
    >>> first_sentence("祝贺开站")
    '祝贺开站'
    >>> first_sentence("第一段没有句号\\n第二段。")
    '第一段没有句号'
    >>> first_sentence("")
    ''
    """
    line = text.split("\n", 1)[0].strip(EDGE_SPACE)
    match = _SENTENCE_END_RE.search(line)
    return line[: match.end()] if match else line


def strip_final_punct(text: str) -> str:
    """A sentence without its final punctuation, for use as a title.

    >>> strip_final_punct("霍尼韦尔宣布为蔚来提供制冷剂。")
    '霍尼韦尔宣布为蔚来提供制冷剂'
    >>> strip_final_punct("大行情要来？！")
    '大行情要来'
    """
    return text.rstrip(_FINAL_PUNCT + EDGE_SPACE)
