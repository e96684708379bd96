"""The share service's JSON: ``/NewsData/GetNewsText.do?id=<code>``.

The publishing scripts read the body HTML from key ``text`` (media news) and
``content`` (rolling news, whose codes are 18 digits without ``NW``); the
replica models the other keys: ``title``, ``showtime`` (``YYYY-MM-DD
HH:MM:SS``, Asia/Shanghai, may be ``""``), ``mediaName`` and ``infoCode``.
A code has a JSON document only when some post links its share page.
"""

from __future__ import annotations

import re
from typing import Any

from newscrawl.replica.kramdown import render_markdown
from newscrawl.replica.posts import SHANGHAI, Post

#: a share link as the posts write it: ``<http://finews.zning.xyz/html_News/NewsShare.html?infoCode=X>``
SHARE_LINK_RE = re.compile(
    r"<(https?://(?:finews\.zning\.xyz|choicewzp1\.eastmoney\.com)"
    r"/html_News/NewsShare\.html\?infoCode=([^>\s&#]+))>"
)
#: the body of an unknown code (status 200, as an API that reports errors in its body)
NOT_FOUND_DOC: dict[str, Any] = {
    "success": False,
    "message": "infoCode not found",
    "text": None,
}


def share_code(body: str) -> str | None:
    """The info code of the post body's share link, if it has one.

    >>> share_code("x\\n\\n<http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW1>\\n")
    'NW1'
    >>> share_code("<>") is None
    True
    """
    m = SHARE_LINK_RE.search(body)
    return m[2] if m else None


def body_key(code: str) -> str:
    """``content`` for rolling-news codes (18 digits), ``text`` otherwise.

    >>> body_key("202112082206672930"), body_key("NW202202182281010830")
    ('content', 'text')
    """
    return "content" if re.fullmatch(r"\d{18}", code) else "text"


def make_doc(code: str, title: str, showtime: str, media: str, body_html: str) -> dict[str, Any]:
    """One share JSON document."""
    return {
        "success": True,
        "infoCode": code,
        "title": title,
        "showtime": showtime,
        "mediaName": media,
        body_key(code): body_html,
    }


def post_body_html(post: Post) -> str:
    """The article HTML of a post: its raw HTML blocks (no digest, links or back links).

    A post written in plain Markdown paragraphs gets them rendered.
    """
    blocks = [b for b in post.body.split("\n\n") if b.strip()]
    html_blocks = [b.strip("\n") for b in blocks if b.lstrip().startswith(("<p", "<!--", "<cen"))]
    if html_blocks:
        return "\n".join(html_blocks)
    text_blocks = [
        b
        for b in blocks
        if not b.lstrip().startswith((">", "<", "[")) and not b.strip().startswith("<http")
    ]
    return render_markdown("\n\n".join(text_blocks)).replace("\n\n", "")


def doc_from_post(post: Post, code: str) -> dict[str, Any]:
    """The share JSON a post implies when the generator gave none (real posts, edits)."""
    showtime = post.date.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if post.date else ""
    tag = post.tag_text
    media = tag[: -len("新闻")] if tag.endswith("新闻") else tag
    return make_doc(code, post.title, showtime, media, post_body_html(post))
