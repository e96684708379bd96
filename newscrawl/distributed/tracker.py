"""Which popped requests are finished for good: the engine is done with them
(every request they led to is queued in Redis) and every article they yielded
is stored in MongoDB. Only then may a request leave the worker's processing
hash; until then a killed worker's request is re-queued and fetched again.

Pure bookkeeping, no Redis and no Scrapy: the scheduler feeds it.

A popped request may also hand a *derived* request back to the engine (a retry
or a redirect, carrying a copy of its meta): the popped one is finished only
once the derived one is queued in Redis; a retry parked in memory for its
backoff keeps it unfinished, so a killed worker's parked retries are not lost.

Articles are confirmed through the store's ``articles_stored`` signal, which
names article keys, not items. An item whose key already has unconfirmed items
may be written in the same batch as they or in a later one, so it waits for one
more confirmation of that key than the latest of them: never too early; at
worst it stays until the crawl closes (when every batch is written).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class _Wait:
    token: str
    #: confirmations of the key still needed
    remaining: int


class AckTracker:
    """Tokens of popped requests, from pop to "finished for good".

    >>> t = AckTracker()
    >>> t.popped("a", "request-a"); t.popped("b", "request-b")
    >>> t.item_buffered("a", "finews:1")
    >>> t.engine_done("a"); t.engine_done("b")
    >>> t.take_finished()          # b yielded nothing; a waits for its article
    ['b']
    >>> t.stored(["finews:1"])
    >>> t.take_finished(), t.unfinished()
    (['a'], 0)
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        #: token -> request, for requests the engine still works on
        self._active: dict[str, object] = {}
        #: token -> articles not confirmed yet
        self._pending: dict[str, int] = {}
        #: engine done, articles still pending
        self._done: set[str] = set()
        self._finished: list[str] = []
        self._waits: dict[str, list[_Wait]] = {}
        #: token -> derived requests handed to the engine but not queued yet
        self._derived: dict[str, set[int]] = {}

    def popped(self, token: str, request: object) -> None:
        self._active[token] = request

    def active(self) -> dict[str, object]:
        """token -> request, for requests the engine has not finished (a copy)."""
        return dict(self._active)

    def item_buffered(self, token: str | None, key: str | None) -> None:
        """An item of this request reached the store's buffer (``item_scraped``)."""
        if token is None or key is None or token not in self._active:
            return
        waits = self._waits.setdefault(key, [])
        needed = 1 + max((wait.remaining for wait in waits), default=0)
        waits.append(_Wait(token, needed))
        self._pending[token] = self._pending.get(token, 0) + 1

    def derived(self, token: str | None, ref: int) -> None:
        """A request derived from this one was handed to the engine (``ref``:
        its identity); until :meth:`derived_queued` the token stays unfinished.

        >>> t = AckTracker()
        >>> t.popped("a", "request-a"); t.derived("a", 7); t.engine_done("a")
        >>> t.take_finished()
        []
        >>> t.derived_queued("a", 7); t.take_finished()
        ['a']
        """
        if token is None or (token not in self._active and token not in self._done):
            return
        self._derived.setdefault(token, set()).add(ref)

    def derived_queued(self, token: str | None, ref: int) -> None:
        """The derived request is in the shared queue now."""
        refs = self._derived.get(token or "")
        if refs is None or token is None:
            return
        refs.discard(ref)
        if not refs:
            del self._derived[token]
            self._settle(token)

    def _settle(self, token: str) -> None:
        """Finished for good if the engine is done and nothing else is pending."""
        if token in self._done and not self._pending.get(token) and token not in self._derived:
            self._done.discard(token)
            self._finished.append(token)

    def stored(self, keys: Iterable[str]) -> None:
        """A batch naming these article keys was written (or failed: logged,
        and not retried by re-fetching)."""
        for key in keys:
            waits = self._waits.get(key)
            if not waits:
                continue
            left = []
            for wait in waits:
                wait.remaining -= 1
                if wait.remaining > 0:
                    left.append(wait)
                    continue
                self._pending[wait.token] -= 1
                if self._pending[wait.token] == 0:
                    del self._pending[wait.token]
                    self._settle(wait.token)
            if left:
                self._waits[key] = left
            else:
                del self._waits[key]

    def engine_done(self, token: str) -> None:
        """The engine finished the request: callback output handled, items
        through the pipelines, follow-up requests queued."""
        if self._active.pop(token, None) is None:
            return
        self._done.add(token)
        self._settle(token)

    def take_finished(self) -> list[str]:
        """Tokens finished for good since the last call."""
        finished, self._finished = self._finished, []
        return finished

    def take_all(self) -> list[str]:
        """At close, when the engine is done with every request and every batch
        is written: every token not yet taken, except those whose retry or
        redirect never reached the queue (a retry still parked): left
        unfinished, they go back to the queue with the worker's departure.

        >>> t = AckTracker()
        >>> t.popped("a", "ra"); t.popped("b", "rb"); t.derived("b", 1)
        >>> t.take_all(), t.unfinished()
        (['a'], 0)
        """
        tokens = [*self._finished, *self._done, *self._active, *self._pending]
        held = set(self._derived)
        self._reset()
        return [token for token in dict.fromkeys(tokens) if token not in held]

    def busy(self) -> int:
        """Requests that may still add requests to the queue: the engine works
        on them, or one of their retries or redirects is not queued yet."""
        return len(self._active) + sum(1 for token in self._derived if token not in self._active)

    def unfinished(self) -> int:
        """Tokens not finished for good."""
        return len(self._active) + len(self._done)
