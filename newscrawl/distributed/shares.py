"""Share JSON answers and the posts waiting for them, kept in Redis.

In one process the spider keeps posts whose share JSON is in flight, and the
answers, in memory. With several workers a post and its JSON are often handled
by different processes, so in distributed mode both live in Redis:

- a post page calls :meth:`SharedShares.wait`: the answer if some worker
  already has it, else the post is added to the article's waiting list (in
  Redis) and the spider yields the JSON request, deduplicated across workers by
  article id through the shared dupefilter (``request_meta``);
- the JSON's callback calls :meth:`SharedShares.release`: it records the
  answer and gets back every post waiting for it, whichever worker parsed
  them, and yields their articles.

Both are Lua scripts, atomic in Redis: a post cannot slip between an answer
being recorded and the waiting list being read. The waiting list is kept (not
popped) until the crawl ends, so a JSON request re-queued after its worker died
yields every waiting article again (the store merges repeats). Values are
pickled, like scrapy-redis' requests: the Redis must be trusted.
"""

from __future__ import annotations

import logging
import pickle
from typing import TYPE_CHECKING, Any

from newscrawl.distributed.dupefilter import DEDUPE_KEY

if TYPE_CHECKING:
    import redis
    from scrapy.crawler import Crawler

    from newscrawl.extract.post import PostFields
    from newscrawl.extract.share import ShareFields

logger = logging.getLogger(__name__)

# KEYS: shares, waiting; ARGV: article id, pickled (fields, urls)
_WAIT = """
local s = redis.call('HGET', KEYS[1], ARGV[1])
if s then
  return {1, s}
end
local old = redis.call('HGET', KEYS[2], ARGV[1])
local entries = {}
if old then
  entries = cmsgpack.unpack(old)
end
table.insert(entries, ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], cmsgpack.pack(entries))
return {0}
"""

# KEYS: shares, waiting; ARGV: article id, pickled answer, pickled None
# (a real answer replaces a recorded failure; otherwise the first answer stays)
_RELEASE = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if (not cur) or (cur == ARGV[3] and ARGV[2] ~= ARGV[3]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  cur = ARGV[2]
end
local old = redis.call('HGET', KEYS[2], ARGV[1])
local entries = {}
if old then
  entries = cmsgpack.unpack(old)
end
return {cur, entries}
"""

_NONE = pickle.dumps(None)


def share_dedupe_key(code: str) -> str:
    """The dupefilter key of an article's share JSON request.

    >>> share_dedupe_key("NW202202182281010830")
    'share-json:NW202202182281010830'
    """
    return f"share-json:{code}"


class SharedShares:
    """The spider's share-JSON bookkeeping for distributed mode (see the module
    docstring). Keys: ``<prefix>:shares`` and ``<prefix>:share-waiting``."""

    def __init__(self, server: redis.Redis, prefix: str) -> None:
        self.shares_key = f"{prefix}:shares"
        self.waiting_key = f"{prefix}:share-waiting"
        self._wait = server.register_script(_WAIT)
        self._release = server.register_script(_RELEASE)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedShares | None:
        """None unless ``NEWSCRAWL_DISTRIBUTED`` is on."""
        settings = crawler.settings
        if not settings.getbool("NEWSCRAWL_DISTRIBUTED", False):
            return None
        from newscrawl.distributed.connection import key_prefix, redis_from_settings

        assert crawler.spidercls is not None
        return cls(redis_from_settings(settings), key_prefix(settings, crawler.spidercls.name))

    def wait(
        self, code: str, fields: PostFields, urls: list[str]
    ) -> tuple[bool, ShareFields | None]:
        """(True, answer) when the article's share JSON was already handled;
        else (False, None) and the post now waits for it."""
        entry = pickle.dumps((fields, urls))
        reply = self._wait(keys=[self.shares_key, self.waiting_key], args=[code, entry])
        if int(reply[0]) == 1:
            share: ShareFields | None = pickle.loads(reply[1])
            return True, share
        return False, None

    def release(
        self, code: str, share: ShareFields | None
    ) -> tuple[ShareFields | None, list[tuple[PostFields, list[str]]]]:
        """Record the answer; return the answer on record and every post
        waiting for it."""
        args: list[Any] = [code, pickle.dumps(share), _NONE]
        stored, entries = self._release(keys=[self.shares_key, self.waiting_key], args=args)
        waiting: list[tuple[PostFields, list[str]]] = [pickle.loads(e) for e in entries]
        return pickle.loads(stored), waiting

    @staticmethod
    def request_meta(code: str) -> dict[str, str]:
        """Meta for the share JSON request: fetched once per article id across
        every worker (the shared dupefilter keys it by id)."""
        return {DEDUPE_KEY: share_dedupe_key(code)}
