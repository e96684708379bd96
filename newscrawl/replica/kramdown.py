"""Markdown to HTML for finews posts, the way kramdown (Jekyll's converter) does it.

Only what the site's posts use is modelled: raw HTML blocks pass through
untouched; ``> digest`` becomes a blockquote; a bare ``<http://…>`` becomes a
link; ``[text](url)`` becomes a link (kramdown keeps spaces and balanced
brackets in the URL, so ``category/21shijijingjibaodao 21caijingAPP.html``
and ``anxinguojizhengquan(xianggang).html`` work); the empty ``<>`` is text;
other lines become paragraphs. kramdown's typographic quotes are not
modelled (the posts' prose uses Chinese quotes).

A few dozen lines rather than the ``markdown`` package: the subset is tiny,
the output shape (block spacing, kramdown's indented blockquote) is ours to
fix, and a 3,000-post build stays fast.
"""

from __future__ import annotations

import html
import re

#: HTML elements that open a raw HTML block when a line starts with them
_BLOCK_TAGS = frozenset(
    "address article aside blockquote center dd details div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section table ul script style "
    "iframe".split()
)
_BLOCK_START_RE = re.compile(r"^ {0,3}(?:<!--|</?(?P<tag>[A-Za-z][A-Za-z0-9]*)(?=[\s/>]))")
_AUTOLINK_RE = re.compile(r"<((?:https?|ftp)://[^<>\s]*|mailto:[^<>\s]+)>")
_TAG_RE = re.compile(r"<!--.*?-->|</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>", re.S)
_ENTITY_RE = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);")
_HEADER_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_HR_RE = re.compile(r"^ {0,3}(?:(?:-\s*){3,}|(?:\*\s*){3,}|(?:_\s*){3,})$")


def escape_attr(value: str) -> str:
    """Escape an attribute value as kramdown does (``& < > "``).

    >>> escape_attr('a&b "c" <d>')
    'a&amp;b &quot;c&quot; &lt;d&gt;'
    """
    return html.escape(value, quote=False).replace('"', "&quot;")


def _scan_link_url(text: str, start: int) -> tuple[str, int] | None:
    """Read ``(url)`` from ``text[start] == "("``, counting brackets as kramdown does.

    Returns the stripped URL and the index after the closing bracket.
    """
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                url = text[start + 1 : i].strip()
                if url.startswith("<") and url.endswith(">"):
                    url = url[1:-1]
                return url, i + 1
        elif ch == "\n":
            return None
        i += 1
    return None


def render_inline(text: str) -> str:
    """Inline Markdown: links, autolinks, raw tags and entities; the rest escaped.

    >>> render_inline("<http://a.com/x?a=1&b=2>")
    '<a href="http://a.com/x?a=1&amp;b=2">http://a.com/x?a=1&amp;b=2</a>'
    >>> render_inline("<>")
    '&lt;&gt;'
    >>> render_inline("[返回X](//h/category/a b(c).html)｜[返回首页](//h/)")
    '<a href="//h/category/a b(c).html">返回X</a>｜<a href="//h/">返回首页</a>'
    >>> render_inline("A&B &lt;x&gt; <span id=\\"q\\"></span>")
    'A&amp;B &lt;x&gt; <span id="q"></span>'
    """
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "<":
            m = _AUTOLINK_RE.match(text, i)
            if m:
                url = escape_attr(m[1])
                out.append(f'<a href="{url}">{url}</a>')
                i = m.end()
                continue
            m = _TAG_RE.match(text, i)
            if m:
                out.append(m[0])
                i = m.end()
                continue
            out.append("&lt;")
        elif ch == "[":
            close = text.find("]", i + 1)
            if close != -1 and close + 1 < n and text[close + 1] == "(":
                found = _scan_link_url(text, close + 1)
                if found is not None:
                    url, end = found
                    label = render_inline(text[i + 1 : close])
                    out.append(f'<a href="{escape_attr(url)}">{label}</a>')
                    i = end
                    continue
            out.append(ch)
        elif ch == "&":
            m = _ENTITY_RE.match(text, i)
            if m:
                out.append(m[0])
                i = m.end()
                continue
            out.append("&amp;")
        elif ch == ">":
            out.append("&gt;")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _is_html_block(first_line: str) -> bool:
    m = _BLOCK_START_RE.match(first_line)
    if not m:
        return False
    tag = m["tag"]
    return tag is None or tag.lower() in _BLOCK_TAGS


def _blocks(text: str) -> list[list[str]]:
    """Split into blocks of consecutive non-blank lines."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in text.split("\n"):
        if line.strip():
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def render_markdown(text: str) -> str:
    """Render a post body to HTML.

    >>> print(render_markdown("> 摘要。\\n\\n<p>正文</p>\\n\\n<>\\n\\n[a](../x/)\\n[b](../)"))
    <blockquote>
      <p>摘要。</p>
    </blockquote>
    <BLANKLINE>
    <p>正文</p>
    <BLANKLINE>
    <p>&lt;&gt;</p>
    <BLANKLINE>
    <p><a href="../x/">a</a>
    <a href="../">b</a></p>
    """
    parts: list[str] = []
    for block in _blocks(text):
        first = block[0]
        if all(line.lstrip().startswith(">") for line in block):
            inner = "\n".join(re.sub(r"^\s*> ?", "", line) for line in block)
            rendered = render_markdown(inner)
            indented = "\n".join(("  " + ln) if ln else ln for ln in rendered.split("\n"))
            parts.append(f"<blockquote>\n{indented}\n</blockquote>")
        elif _is_html_block(first):
            parts.append("\n".join(block))
        elif len(block) == 1 and _HR_RE.match(first):
            parts.append("<hr />")
        elif len(block) == 1 and _HEADER_RE.match(first.strip()):
            m = _HEADER_RE.match(first.strip())
            assert m is not None
            level = len(m[1])
            parts.append(f"<h{level}>{render_inline(m[2])}</h{level}>")
        else:
            lines = [line.strip() for line in block]
            parts.append(f"<p>{render_inline(chr(10).join(lines))}</p>")
    return "\n\n".join(parts)


def first_block(text: str) -> str:
    """Jekyll's excerpt source: the body up to the first blank line.

    >>> first_block("\\n祝贺开站")
    '祝贺开站'
    >>> first_block("> a\\n\\nb")
    '> a'
    """
    return text.strip("\n").split("\n\n", 1)[0]
