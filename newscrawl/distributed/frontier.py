"""The shared frontier in Redis: queue, dupefilter, in-flight requests, workers.

Every operation that must not be torn by a crash or by another worker is one
Lua script, so it is atomic in Redis:

- :meth:`Frontier.push`: dupefilter check and queue insert together (a worker
  killed between the two would otherwise leave a fingerprint whose request is
  nowhere); start requests are pushed only by the first worker (``seeded``).
- :meth:`Frontier.pop`: the request leaves the queue and enters the worker's
  ``processing`` hash, and the worker's in-flight count goes up.
- :meth:`Frontier.heartbeat` / :meth:`Frontier.snapshot`: a worker whose
  heartbeat key expired is dead; its ``processing`` entries go back to the
  queue (a *reliable queue*), so a killed worker loses nothing for good.
- :meth:`Frontier.leave`: the last worker of a finished crawl deletes the
  crawl's keys, so the next crawl starts afresh; an unfinished crawl keeps
  them and the next workers resume it.

Keys, for a prefix ``P`` (``newscrawl:finews`` by default):

========================  ====================================================
``P:requests``            sorted set: the queue (score ``-priority``), scrapy-redis' PriorityQueue
``P:dupefilter``          set: fingerprints of every request ever queued
``P:seeded``              the worker that pushed the start requests
``P:run-id``              the crawl's run id, shared by its workers
``P:workers``             set: registered worker ids
``P:worker:<id>``         heartbeat, expires after the worker timeout
``P:processing:<id>``     hash token -> ``<score>\\n<request>``: popped, not yet finished
``P:active``              hash id -> requests the worker is still working on
``P:shares``              hash: share JSON answers by article id (see ``shares.py``)
``P:share-waiting``       hash: posts waiting for a share JSON, by article id
========================  ====================================================
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

logger = logging.getLogger(__name__)

#: Lua: move the processing entries of every worker whose heartbeat expired
#: back to the queue; sets ``dead`` and ``recovered``.
_RECOVER = """
local dead, recovered = 0, 0
for _, w in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[1] .. ':worker:' .. w) == 0 then
    local pkey = ARGV[1] .. ':processing:' .. w
    for _, e in ipairs(redis.call('HVALS', pkey)) do
      local nl = string.find(e, '\\n', 1, true)
      redis.call('ZADD', KEYS[1], string.sub(e, 1, nl - 1), string.sub(e, nl + 1))
      recovered = recovered + 1
    end
    redis.call('DEL', pkey)
    redis.call('HDEL', KEYS[3], w)
    redis.call('SREM', KEYS[2], w)
    dead = dead + 1
  end
end
"""

# KEYS: queue, dupefilter, seeded; ARGV: fingerprint or '', score, data, seeder or ''
_PUSH = """
if ARGV[4] ~= '' then
  local owner = redis.call('GET', KEYS[3])
  if not owner then
    redis.call('SET', KEYS[3], ARGV[4])
  elseif owner ~= ARGV[4] then
    return -1
  end
end
if ARGV[1] ~= '' and redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
return 1
"""

# KEYS: queue, processing, active; ARGV: worker, token
_POP = """
local r = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #r == 0 then
  return false
end
redis.call('ZREM', KEYS[1], r[1])
redis.call('HSET', KEYS[2], ARGV[2], r[2] .. '\\n' .. r[1])
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
return r[1]
"""

# KEYS: processing, active; ARGV: worker, busy count, tokens...
_FINISH = """
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
for i = 3, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
end
return 1
"""

# KEYS: workers, heartbeat, active; ARGV: worker, ttl ms, in-flight count
_HEARTBEAT = """
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
local added = redis.call('SADD', KEYS[1], ARGV[1])
if added == 1 then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
end
return added
"""

# KEYS: queue, workers, active; ARGV: prefix
_SNAPSHOT = (
    _RECOVER
    + """
local active = 0
for _, n in ipairs(redis.call('HVALS', KEYS[3])) do
  active = active + tonumber(n)
end
return {redis.call('ZCARD', KEYS[1]), active, dead, recovered}
"""
)

# KEYS: queue, workers, active, processing, heartbeat; ARGV: prefix, worker,
# finished (1/0), keys to delete when this was the last worker of a finished crawl...
_LEAVE = (
    _RECOVER
    + """
for _, e in ipairs(redis.call('HVALS', KEYS[4])) do
  local nl = string.find(e, '\\n', 1, true)
  redis.call('ZADD', KEYS[1], string.sub(e, 1, nl - 1), string.sub(e, nl + 1))
  recovered = recovered + 1
end
redis.call('DEL', KEYS[4], KEYS[5])
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('SREM', KEYS[2], ARGV[2])
local cleaned = 0
if ARGV[3] == '1' and redis.call('SCARD', KEYS[2]) == 0 and redis.call('ZCARD', KEYS[1]) == 0 then
  for i = 4, #ARGV do
    redis.call('DEL', ARGV[i])
  end
  cleaned = 1
end
return {cleaned, dead, recovered}
"""
)


@dataclass(frozen=True)
class Snapshot:
    """The frontier as seen in one atomic read (after recovering dead workers)."""

    queued: int
    #: requests popped and not yet finished by live (or not yet expired) workers
    active: int
    #: workers found dead and their requests re-queued by this call
    dead: int
    recovered: int

    @property
    def idle(self) -> bool:
        """Nothing queued and nobody working: no request can appear any more.

        >>> Snapshot(0, 0, 0, 0).idle, Snapshot(0, 1, 0, 0).idle, Snapshot(2, 0, 0, 0).idle
        (True, False, False)
        """
        return self.queued == 0 and self.active == 0


@dataclass(frozen=True)
class Departure:
    """What :meth:`Frontier.leave` did."""

    #: this was the last worker of a finished crawl: the crawl's keys are gone
    cleaned: bool
    dead: int
    recovered: int


class Frontier:
    """Redis side of the distributed scheduler for one crawl (one key prefix).

    ``server`` must return bytes (``decode_responses=False``, scrapy-redis'
    default). Requests are opaque bytes here; scores are ``-priority``.
    """

    def __init__(
        self,
        server: redis.Redis,
        prefix: str,
        *,
        queue_key: str | None = None,
        dupefilter_key: str | None = None,
    ) -> None:
        self.server = server
        self.prefix = prefix
        self.queue_key = queue_key or f"{prefix}:requests"
        self.dupefilter_key = dupefilter_key or f"{prefix}:dupefilter"
        self.seeded_key = f"{prefix}:seeded"
        self.run_id_key = f"{prefix}:run-id"
        self.workers_key = f"{prefix}:workers"
        self.active_key = f"{prefix}:active"
        self.shares_key = f"{prefix}:shares"
        self.share_waiting_key = f"{prefix}:share-waiting"
        self._push = server.register_script(_PUSH)
        self._pop = server.register_script(_POP)
        self._finish = server.register_script(_FINISH)
        self._heartbeat = server.register_script(_HEARTBEAT)
        self._snapshot = server.register_script(_SNAPSHOT)
        self._leave = server.register_script(_LEAVE)

    def heartbeat_key(self, worker: str) -> str:
        return f"{self.prefix}:worker:{worker}"

    def processing_key(self, worker: str) -> str:
        return f"{self.prefix}:processing:{worker}"

    def crawl_keys(self) -> list[str]:
        """The keys a finished crawl leaves behind, deleted by its last worker."""
        return [
            self.queue_key,
            self.dupefilter_key,
            self.seeded_key,
            self.run_id_key,
            self.workers_key,
            self.active_key,
            self.shares_key,
            self.share_waiting_key,
        ]

    # -- requests ----------------------------------------------------------

    def push(self, data: bytes, score: float, fingerprint: str | None, seeder: str | None) -> int:
        """Queue ``data`` unless its fingerprint was seen. ``seeder``: this is
        a start request of that worker, queued only if that worker is the
        crawl's first (or only) seeder. Returns 1 queued, 0 duplicate, -1 not
        the seeder."""
        args: list[Any] = [fingerprint or "", repr(score), data, seeder or ""]
        keys = [self.queue_key, self.dupefilter_key, self.seeded_key]
        return int(self._push(keys=keys, args=args))

    def pop(self, worker: str, token: str) -> bytes | None:
        """The highest-priority request, now held in the worker's processing hash."""
        keys = [self.queue_key, self.processing_key(worker), self.active_key]
        data = self._pop(keys=keys, args=[worker, token])
        return bytes(data) if data is not None else None

    def finish(self, worker: str, busy: int, tokens: Iterable[str]) -> None:
        """The worker has ``busy`` popped requests that may still add new ones
        (its in-flight count, set; :meth:`pop` adds one atomically), and
        ``tokens`` are finished for good (their articles stored)."""
        args: list[Any] = [worker, busy, *tokens]
        self._finish(keys=[self.processing_key(worker), self.active_key], args=args)

    # -- workers -----------------------------------------------------------

    def heartbeat(self, worker: str, ttl_seconds: float, active: int) -> bool:
        """Register or refresh the worker; True when it was not registered
        (its first beat, or others presumed it dead and re-queued its work)."""
        keys = [self.workers_key, self.heartbeat_key(worker), self.active_key]
        args: list[Any] = [worker, max(1, int(ttl_seconds * 1000)), active]
        return bool(self._heartbeat(keys=keys, args=args))

    def snapshot(self) -> Snapshot:
        """Re-queue dead workers' requests, then count queued and active ones."""
        keys = [self.queue_key, self.workers_key, self.active_key]
        queued, active, dead, recovered = self._snapshot(keys=keys, args=[self.prefix])
        return Snapshot(int(queued), int(active), int(dead), int(recovered))

    def leave(self, worker: str, finished: bool) -> Departure:
        """Unregister (anything still in the worker's processing hash goes back
        to the queue). When ``finished`` and no worker is left and nothing is
        queued, delete the crawl's keys."""
        keys = [
            self.queue_key,
            self.workers_key,
            self.active_key,
            self.processing_key(worker),
            self.heartbeat_key(worker),
        ]
        args = [self.prefix, worker, "1" if finished else "0", *self.crawl_keys()]
        cleaned, dead, recovered = self._leave(keys=keys, args=args)
        return Departure(bool(cleaned), int(dead), int(recovered))

    def run_id(self, candidate: str) -> str:
        """The crawl's run id: ``candidate`` if this is the first worker to ask."""
        self.server.set(self.run_id_key, candidate, nx=True)
        value = self.server.get(self.run_id_key)
        return value.decode() if isinstance(value, bytes) else str(value or candidate)

    def queued(self) -> int:
        return int(self.server.zcard(self.queue_key))
