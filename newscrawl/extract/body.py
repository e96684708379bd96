"""The body of a finews post (or of its share JSON): paragraphs in, fields out.

Walks the block elements of a container in order and sorts each into body
text, digest, byline, source line, image caption, share / origin link, back
links, or noise (hidden paragraphs, ``EM_StockImg`` stock charts, empty quote
holders). One pass over the tree; no regular expression runs on the whole page.

>>> from parsel import Selector
>>> html = '''<section><p>□ 本报记者张环泽 </p><p>本报通讯员赵峰顿星亮</p>
... <p>　　“以前，我手机里有10多个群。”近日，某企业负责人说。 </p>
... <p>深入一线，倾听企声找“痛点”</p>
... <p class="em_media">（文章来源：大众日报）</p>
... <p><a href="http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW1">http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW1</a></p>
... <p><a href="//finews.withounder.com/category/dazhongribao.html">返回大众日报新闻</a>｜
... <a href="//finews.withounder.com/">返回首页</a></p>
... </section>'''
>>> section = Selector(text=html).root.find(".//section")
>>> fields = extract_body(section, "https://finews.withounder.com/dazhongribao/2022/02/18/NW1.html")
>>> print(fields.body)
“以前，我手机里有10多个群。”近日，某企业负责人说。
深入一线，倾听企声找“痛点”
>>> fields.byline.authors, fields.byline.correspondents, fields.source
(['张环泽'], ['赵峰', '顿星亮'], '大众日报')
>>> fields.share_url, fields.category_links
('http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW1', ['https://finews.withounder.com/category/dazhongribao.html'])
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from newscrawl.extract.bylines import Byline, parse_byline, parse_dateline, split_trailing_byline
from newscrawl.extract.sources import source_from_line, split_trailing_source
from newscrawl.extract.text import EDGE_SPACE, clean_lines
from newscrawl.sites.finews import SHARE_HOSTS, SITE_HOSTS
from newscrawl.urls import absolute_url

logger = logging.getLogger(__name__)

#: elements that start a new block (a paragraph, or a container of paragraphs)
BLOCK_TAGS = frozenset(
    "p div center blockquote h1 h2 h3 h4 h5 h6 ul ol li table thead tbody tfoot tr "
    "figure figcaption section article header footer aside pre hr dl dt dd address "
    "main nav form".split()
)
#: blocks that hold other blocks: walked into when they do
CONTAINER_TAGS = frozenset(
    "div center ul ol table thead tbody tfoot figure section article main aside dl form".split()
)
#: elements whose content is never text
SKIP_TAGS = frozenset("script style noscript template head title meta link iframe object".split())
#: blocks the body walk leaves to the caller (the stamp / tags line, the title)
LEFT_TO_CALLER = frozenset({"small", "h1"})
STOCK_START = "EM_StockImg_Start"
STOCK_END = "EM_StockImg_End"
#: caption paragraphs that are not centered start with one of these
CAPTION_PREFIXES = ("图片来源", "图为", "图：", "图:")
BACK_PREFIX = "返回"
HOME_LINK_TEXT = "返回首页"
EMPTY_LINK = "<>"
_STYLE_SPACE_RE = re.compile(r"\s+")
#: deeper than this, an element's text is taken flat (no Python recursion on hostile nesting)
MAX_DEPTH = 64
#: a src or href longer than this is not a link of this site (hostile or broken markup): ignored
MAX_URL_CHARS = 4096
_HIDDEN_STYLES = ("display:none", "visibility:hidden")


@dataclass
class BodyFields:
    """What a body says, before the page-level fallbacks (``post.py``)."""

    lines: list[str] = field(default_factory=list)
    digest: list[str] = field(default_factory=list)
    images: list[dict[str, str | None]] = field(default_factory=list)
    byline: Byline = field(default_factory=Byline)
    #: from the source line ``（文章来源：X）``
    source: str | None = None
    #: from a trailing ``（央视新闻）`` of the last paragraph
    trailing_source: str | None = None
    #: from a trailing ``（上海证券报）`` of the digest (the digest keeps it)
    digest_source: str | None = None
    share_url: str | None = None
    origin_url: str | None = None
    category_links: list[str] = field(default_factory=list)
    outlinks: list[str] = field(default_factory=list)

    @property
    def body(self) -> str:
        return "\n".join(self.lines)


@dataclass
class _Inline:
    """Text, images and links gathered from one block."""

    parts: list[str] = field(default_factory=list)
    #: text outside any link (to tell a link paragraph from a text one)
    loose: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, text)
    in_stock: bool = False

    def lines(self) -> list[str]:
        return clean_lines("".join(self.parts))


def _is_element(node: Any) -> bool:
    return isinstance(node.tag, str)


def _comment_text(node: Any) -> str:
    return "" if _is_element(node) else str(node.text or "")


def _style(node: Any) -> str:
    style = node.get("style")
    return _STYLE_SPACE_RE.sub("", str(style)).lower() if style else ""


def is_hidden(node: Any) -> bool:
    """``style="display:none"``, ``visibility:hidden`` or a ``hidden`` attribute."""
    if node.get("hidden") is not None:
        return True
    style = _style(node)
    return bool(style) and any(s in style for s in _HIDDEN_STYLES)


def is_centered(node: Any) -> bool:
    """``style="text-align:center…"``, ``align="center"`` or ``<center>``."""
    return (
        node.tag == "center"
        or "text-align:center" in _style(node)
        or str(node.get("align") or "").lower() == "center"
    )


def _toggle_stock(node: Any, in_stock: bool) -> bool:
    text = _comment_text(node)
    if STOCK_START in text:
        return True
    if STOCK_END in text:
        return False
    return in_stock


def _gather(node: Any, acc: _Inline, in_link: bool = False, depth: int = 0) -> None:
    """Collect the text (``<br>`` → newline, blocks on their own lines),
    images and links under ``node``, skipping hidden and stock-chart parts."""
    for child in node:
        if not _is_element(child):
            acc.in_stock = _toggle_stock(child, acc.in_stock)
        elif not acc.in_stock:
            _gather_element(child, acc, in_link, depth + 1)
        if child.tail and not acc.in_stock:
            acc.parts.append(child.tail)
            if not in_link:
                acc.loose.append(child.tail)


def _url_attr(node: Any, name: str) -> str:
    """A URL attribute, stripped; empty when absent or over :data:`MAX_URL_CHARS`."""
    value = str(node.get(name) or "")
    if len(value) > MAX_URL_CHARS:
        logger.debug("Ignored a %s of %d characters", name, len(value))
        return ""
    return value.strip(EDGE_SPACE)


def _gather_element(node: Any, acc: _Inline, in_link: bool, depth: int = 0) -> None:
    tag = node.tag
    if tag in SKIP_TAGS or is_hidden(node):
        return
    if depth > MAX_DEPTH:
        acc.parts.append("".join(node.itertext()))
        return
    if tag == "br":
        acc.parts.append("\n")
        return
    if tag == "img":
        src = _url_attr(node, "src")
        if src:
            acc.images.append(src)
        return
    block = tag in BLOCK_TAGS
    if block:
        acc.parts.append("\n")
    start = len(acc.parts)
    if node.text:
        acc.parts.append(node.text)
        if not in_link and tag != "a":
            acc.loose.append(node.text)
    _gather(node, acc, in_link or tag == "a", depth)
    if tag == "a":
        href = _url_attr(node, "href")
        acc.links.append((href, "".join(acc.parts[start:]).strip(EDGE_SPACE)))
    elif tag in ("td", "th"):
        acc.parts.append(" ")
    if block:
        acc.parts.append("\n")


def _has_block_child(node: Any) -> bool:
    return any(_is_element(child) and child.tag in BLOCK_TAGS for child in node)


def iter_blocks(container: Any, depth: int = 0) -> Iterator[Any]:
    """The blocks of ``container`` in order: block elements (containers of
    blocks are walked into), comments, and runs of loose inline content
    (yielded as a list of nodes, with the leading text as a string).
    ``<small>`` and ``<h1>`` children are left out."""
    run: list[Any] = []
    if container.text and container.text.strip(EDGE_SPACE):
        run.append(container.text)
    for child in container:
        if _is_element(child) and (child.tag in BLOCK_TAGS or child.tag in LEFT_TO_CALLER):
            if run:
                yield run
                run = []
            if child.tag in LEFT_TO_CALLER:
                pass  # the caller's: the stamp, the title, the tags line
            elif (
                child.tag in CONTAINER_TAGS
                and depth < MAX_DEPTH
                and _has_block_child(child)
                and not is_hidden(child)
            ):
                yield from iter_blocks(child, depth + 1)
            else:
                yield child
            if child.tail and child.tail.strip(EDGE_SPACE):
                run.append(child.tail)
        elif not _is_element(child):
            if run:
                yield run
                run = []
            yield child
            if child.tail and child.tail.strip(EDGE_SPACE):
                run.append(child.tail)
        else:
            run.append(child)
    if run:
        yield run


def _gather_run(run: list[Any], in_stock: bool) -> _Inline:
    acc = _Inline(in_stock=in_stock)
    for node in run:
        if isinstance(node, str):
            acc.parts.append(node)
            acc.loose.append(node)
        else:
            _gather_element(node, acc, in_link=False)
            if node.tail:
                acc.parts.append(node.tail)
                acc.loose.append(node.tail)
    return acc


def _looks_like_url(text: str, href: str) -> bool:
    return text == href or text.startswith(("http://", "https://", "//"))


class _Walk:
    """The state of one body walk."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.out = BodyFields()
        self.in_stock = False
        self.caption_for: int | None = None  # index of an image waiting for its caption
        self.seen_outlinks: set[str] = set()
        #: blocks skipped since a stock-chart start comment (walked again if no end comes)
        self.stock_skipped: list[Any] = []

    def absolute(self, href: str) -> str:
        return absolute_url(self.base_url, href)

    def host(self, href: str) -> str:
        try:
            return urlsplit(self.absolute(href)).hostname or ""
        except ValueError:
            return ""

    def add_outlinks(self, links: list[tuple[str, str]]) -> None:
        for href, _text in links:
            url = self.absolute(href)
            if not url.startswith(("http://", "https://")):
                continue
            host = self.host(url)
            if host and host not in SITE_HOSTS and host not in SHARE_HOSTS:
                if url not in self.seen_outlinks:
                    self.seen_outlinks.add(url)
                    self.out.outlinks.append(url)

    def block(self, node: Any) -> None:
        if not isinstance(node, list) and not _is_element(node):
            was = self.in_stock
            self.in_stock = _toggle_stock(node, self.in_stock)
            if self.in_stock != was:
                self.stock_skipped = []
            return
        if self.in_stock:
            self.stock_skipped.append(node)
        if isinstance(node, list):
            acc = _gather_run(node, self.in_stock)
            self.in_stock = acc.in_stock
            self.paragraph(acc, centered=False, quote=False)
            return
        if node.tag in LEFT_TO_CALLER or node.tag in SKIP_TAGS or is_hidden(node):
            return
        acc = _Inline(in_stock=self.in_stock)
        if node.text and not self.in_stock:
            acc.parts.append(node.text)
            acc.loose.append(node.text)
        _gather(node, acc)
        self.in_stock = acc.in_stock
        self.paragraph(acc, centered=is_centered(node), quote=node.tag == "blockquote")

    def unclosed_stock(self) -> None:
        """A stock-chart start without its end (a cut page): the blocks after
        it are article text after all, so walk them again."""
        if self.in_stock and self.stock_skipped:
            skipped, self.stock_skipped = self.stock_skipped, []
            self.in_stock = False
            for node in skipped:
                self.block(node)

    def paragraph(self, acc: _Inline, *, centered: bool, quote: bool) -> None:
        out = self.out
        lines = acc.lines()
        for src in acc.images:
            out.images.append({"src": self.absolute(src), "caption": None})
            self.caption_for = len(out.images) - 1
        if not lines:
            return
        text = "\n".join(lines)
        if self.caption_for is not None and not acc.images:
            index, self.caption_for = self.caption_for, None
            if centered or text.startswith(CAPTION_PREFIXES):
                out.images[index]["caption"] = text
                return
        if not acc.images:
            self.caption_for = None
        source = source_from_line(text) if len(lines) == 1 else None
        if source is not None:
            out.source = out.source or source
            return
        if self.link_paragraph(acc, text):
            return
        if quote and not out.digest and not out.lines:
            out.digest = lines
            out.digest_source = split_trailing_source(lines[-1])[1]
            self.add_outlinks(acc.links)
            return
        kept = []
        for line in lines:
            byline = parse_byline(line)
            if byline is not None:
                out.byline.extend(byline)
            else:
                kept.append(line)
        if not kept:
            return
        dated, _ = parse_dateline(kept[0])
        if dated is not None:
            out.byline.extend(dated)
        out.lines.extend(kept)
        self.add_outlinks(acc.links)

    def link_paragraph(self, acc: _Inline, text: str) -> bool:
        """The share / origin link, the empty link ``<>``, the back links:
        record them and say the paragraph is not body text."""
        if text == EMPTY_LINK:
            return True
        if not acc.links or "".join(acc.loose).strip(EDGE_SPACE + "｜|"):
            return False
        links = [(href, label) for href, label in acc.links if href]
        if links and all(label.startswith(BACK_PREFIX) for _, label in links):
            for href, label in links:
                if label != HOME_LINK_TEXT:
                    self.out.category_links.append(self.absolute(href))
            return True
        if not links or not all(_looks_like_url(label, href) for href, label in links):
            return False
        for href, _label in links:
            host = self.host(href)
            if host in SHARE_HOSTS:
                self.out.share_url = self.out.share_url or href
            elif host in SITE_HOSTS:
                continue
            elif self.out.origin_url is None:
                self.out.origin_url = href
            else:
                self.add_outlinks([(href, "")])
        return True

    def finish(self) -> BodyFields:
        """Cut the trailing ``（记者 X）`` and ``（央视新闻）`` off the last line."""
        out = self.out
        for _ in range(4):
            if not out.lines:
                break
            last = out.lines[-1]
            rest, byline = split_trailing_byline(last)
            if byline is not None:
                out.byline.extend(byline)
            else:
                rest, source = split_trailing_source(last)
                if source is None:
                    break
                out.trailing_source = out.trailing_source or source
            if rest:
                out.lines[-1] = rest
            else:
                out.lines.pop()
        return out


def extract_body(container: Any, base_url: str) -> BodyFields:
    """The body fields of the blocks under ``container`` (an lxml element),
    links resolved against ``base_url``. ``<small>`` and ``<h1>`` blocks are
    skipped (the page stamp, tags line and title belong to the caller)."""
    walk = _Walk(base_url)
    for node in iter_blocks(container):
        walk.block(node)
    walk.unclosed_stock()
    return walk.finish()
