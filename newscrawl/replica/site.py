"""A whole replica site: its posts in Jekyll's order plus the site-wide settings.

Jekyll sorts posts by date (then by path); ``page.previous`` is the older
neighbour and ``page.next`` the newer one. ``site.tags`` lists tags in the
order they first appear walking the posts from the oldest, each with its
posts newest first; ``site.categories`` likewise. The home page and the
category pages are built from these.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from newscrawl.replica.posts import SHANGHAI, Post, load_posts, post_date, post_path

#: The site's hosts (see newscrawl/sites/finews.py)
MAIN_HOST = "finews.withounder.com"
ALIAS_HOST = "finews.zning.me"
SHARE_HOST = "finews.zning.xyz"
OLD_SHARE_HOST = "choicewzp1.eastmoney.com"
SITE_TITLE = "金融消息"
#: the static tree of a built site: ``<site>/www/<host>/<path>``
WWW_DIR = "www"
#: the share JSON of code C is ``www/<SHARE_HOST>/<SHARE_JSON_DIR>/C.json``
SHARE_JSON_DIR = "NewsData/GetNewsText.do"
#: the body answered for an unknown code (also a file, for nginx)
SHARE_NOT_FOUND_FILE = "_notfound.json"
#: which static tree serves which host
HOST_TREES = {
    MAIN_HOST: MAIN_HOST,
    ALIAS_HOST: MAIN_HOST,
    SHARE_HOST: SHARE_HOST,
    OLD_SHARE_HOST: SHARE_HOST,
}
#: the day after the newest real sample post: the default "now" of a built site
DEFAULT_NOW = datetime(2022, 5, 27, 12, 0, 0, tzinfo=SHANGHAI)


@dataclass
class SiteConfig:
    """Site-wide settings that are not in any post.

    ``category_titles`` are the hand-written titles of the category pages
    (they can be wrong: the real ``category/dazhongribao.html`` says
    光大证券研究新闻); a category without one gets its first post's first tag.
    ``link_salt`` picks which listing entries use an alias host, another
    scheme or a query (stable per post, so a rebuild gives the same links).
    """

    now: datetime = DEFAULT_NOW
    category_titles: dict[str, str] = field(default_factory=dict)
    feed_limit: int = 10
    home_per_tag: int = 5
    link_salt: str = "finews"

    @property
    def build_revision(self) -> str:
        """A stand-in for ``site.github.build_revision`` (a commit id)."""
        raw = f"{self.link_salt}:{self.now.isoformat()}".encode()
        return hashlib.sha1(raw).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "category_titles": self.category_titles,
            "feed_limit": self.feed_limit,
            "home_per_tag": self.home_per_tag,
            "link_salt": self.link_salt,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SiteConfig:
        return cls(
            now=datetime.fromisoformat(data["now"]) if data.get("now") else DEFAULT_NOW,
            category_titles=dict(data.get("category_titles", {})),
            feed_limit=int(data.get("feed_limit", 10)),
            home_per_tag=int(data.get("home_per_tag", 5)),
            link_salt=str(data.get("link_salt", "finews")),
        )

    @classmethod
    def load(cls, path: Path) -> SiteConfig:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


def stable_fraction(*parts: str) -> float:
    """A number in [0, 1) that depends only on ``parts`` (not on any RNG).

    >>> stable_fraction("a", "b") == stable_fraction("a", "b")
    True
    >>> 0 <= stable_fraction("x") < 1
    True
    """
    digest = hashlib.sha1("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Site:
    """The posts of one site, in Jekyll's order, with their URLs and neighbours."""

    def __init__(self, posts: list[Post], config: SiteConfig | None = None) -> None:
        self.config = config or SiteConfig()
        self.posts: list[Post] = sorted(posts, key=lambda p: (post_date(p), p.file_name, p.id))
        self._index = {id(p): i for i, p in enumerate(self.posts)}
        self.paths: dict[int, str] = {id(p): post_path(p) for p in self.posts}
        self._groups: dict[str, dict[str, list[Post]]] = {}

    @classmethod
    def from_dir(cls, posts_dir: Path, config: SiteConfig | None = None) -> Site:
        return cls(load_posts(posts_dir), config)

    def path(self, post: Post) -> str:
        """The post's URL path (percent-encoded)."""
        return self.paths[id(post)]

    def url(self, post: Post, host: str = MAIN_HOST) -> str:
        return f"https://{host}{self.path(post)}"

    def previous(self, post: Post) -> Post | None:
        """The older neighbour (Jekyll's ``page.previous``)."""
        i = self._index[id(post)]
        return self.posts[i - 1] if i > 0 else None

    def next(self, post: Post) -> Post | None:
        """The newer neighbour (Jekyll's ``page.next``)."""
        i = self._index[id(post)]
        return self.posts[i + 1] if i + 1 < len(self.posts) else None

    def _grouped(self, key: str) -> dict[str, list[Post]]:
        cached = self._groups.get(key)
        if cached is not None:
            return cached
        groups: dict[str, list[Post]] = {}
        for post in self.posts:
            values = post.tags if key == "tags" else [post.category]
            for value in values:
                groups.setdefault(value, []).append(post)
        result = {k: list(reversed(v)) for k, v in groups.items()}
        self._groups[key] = result
        return result

    def tags(self) -> dict[str, list[Post]]:
        """Tag -> posts newest first, tags in order of first appearance."""
        return self._grouped("tags")

    def categories(self) -> dict[str, list[Post]]:
        """Category value as written (``21shijijingjibaodao 21caijingAPP``) -> posts, newest first.

        Real Jekyll keys ``site.categories`` by single words, so the real page
        of a multi-word category lists nothing; the replica lists its posts.
        """
        return self._grouped("categories")

    def category_title(self, slug: str) -> str:
        if slug in self.config.category_titles:
            return self.config.category_titles[slug]
        posts = self.categories().get(slug, [])
        return posts[-1].tags[0] if posts and posts[-1].tags else slug.title()

    def newest(self, limit: int) -> list[Post]:
        return list(reversed(self.posts))[:limit]
