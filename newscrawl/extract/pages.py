"""Bad pages: answers that look like pages but must not become articles.

A crawler meets 200 answers that are empty, cut off mid-transfer, far too
large, or the site's 404 page served with status 200 (GitHub Pages' soft
404: ``404 找不到页面``). :func:`classify_bad_page` names the reason (a stats
key: ``newscrawl/pages/<reason>``); :func:`newscrawl.extract.post.parse_post_page`
returns None for every one of them, so none is ever stored, and
:func:`newscrawl.extract.share.classify_bad_share` does the same for share
JSON answers.
"""

from __future__ import annotations

import re

#: reasons (stats keys ``newscrawl/pages/<reason>``, ``newscrawl/share/<reason>``)
EMPTY = "empty"
TOO_LARGE = "too_large"
NOT_FOUND = "not_found"
TRUNCATED = "truncated"
INVALID_JSON = "invalid_json"
NO_TEXT = "no_text"

#: a post page is ~10-50k characters (its body twice: og:description and the
#: section); anything this large is not a post, and parsing it costs seconds
MAX_PAGE_CHARS = 2_000_000
#: how much of the end of a page is searched for ``</html>``
TAIL_CHARS = 4096

_SOFT_404 = re.compile(
    r"<title>\s*(?:404(?:\s*[-|–·]\s*[^<]*)?|Page not found[^<]*)\s*</title>"
    r"|<h[1-6][^>]*>\s*404\s*找不到页面",
    re.I,
)
_HTML_END = re.compile(r"</html\s*>", re.I)
_SECTION_END = re.compile(r"</section\s*>", re.I)


def classify_bad_page(html: str) -> str | None:
    """Why a page must not be read as an article, or None when it may be.

    ``empty`` (nothing but whitespace), ``too_large`` (over
    :data:`MAX_PAGE_CHARS`), ``not_found`` (the site's 404 page, whatever the
    status), ``truncated`` (neither ``</html>`` nor the end of the article's
    ``<section>``: the transfer was cut).

    >>> classify_bad_page("  \\n"), classify_bad_page("x" * (MAX_PAGE_CHARS + 1))
    ('empty', 'too_large')
    >>> classify_bad_page('<title>404 - 金融消息</title><section><h2 id="a">404 找不到页面</h2>')
    'not_found'
    >>> classify_bad_page("<html><body><section><h1>标题</h1><p>正文的前半")
    'truncated'
    >>> classify_bad_page("<html><section><h1>标题</h1><p>正文。</p></section><footer>")
    >>> classify_bad_page("<title>404家企业获批 - 金融消息</title><section><h1>x</h1></section>")
    """
    if not html or not html.strip():
        return EMPTY
    if len(html) > MAX_PAGE_CHARS:
        return TOO_LARGE
    if _SOFT_404.search(html):
        return NOT_FOUND
    if not _HTML_END.search(html, max(0, len(html) - TAIL_CHARS)) and not _SECTION_END.search(html):
        return TRUNCATED
    return None
