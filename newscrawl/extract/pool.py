"""Parse processes: pages are read (:mod:`newscrawl.extract.read`) off the
crawler process, so parsing runs on another core while Scrapy's single
thread keeps downloading.

Scrapy runs spiders, middlewares and pipelines on one thread; decoding,
parsing and extraction are most of its CPU per article. :class:`ParsePool`
sends a page's bytes to a worker process (``python -m
newscrawl.extract.worker``, talking length-prefixed pickles over its
stdin/stdout) and gives the answer back as an awaitable, so a spider
callback reads ``page = await pool.page(...)``. The pipes are read and
written by the event loop itself: no threads, no extra work on the
crawler's thread beyond a pickle each way.

The dedup pipeline has the same workers make the near-duplicate
signatures of each stored batch (:meth:`ParsePool.entries`): pure CPU work
too, which a thread of the crawler process would do holding the GIL the
crawl thread needs. Before it closes the pool the spider calls
:meth:`ParsePool.wait_idle`, so that calls in flight are answered, not cut.

With ``processes=0`` the same functions run inline. A worker that dies
(killed, out of memory) is not restarted: the pages it held and every page
after are read inline, and :attr:`ParsePool.broken` says so; nothing is lost.

::

    pool = ParsePool(processes=1)
    page = await pool.page(response.body, response.encoding, response.url, POST)
    pool.close()
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from newscrawl.extract.read import PageRead, ShareRead, read_page, read_share

if TYPE_CHECKING:
    from newscrawl.dedup.index import Entry
    from newscrawl.dedup.minhash import Scheme

logger = logging.getLogger(__name__)


def _dedup_entries(*args: Any) -> tuple[list[Entry], int]:
    """:func:`newscrawl.dedup.index.make_entries`, imported when first asked
    for: numpy and pymongo stay out of processes that never make signatures
    (the bench's bare spider imports the spider module)."""
    from newscrawl.dedup.index import make_entries

    return make_entries(*args)


#: frame header: payload length (unsigned 32-bit, big-endian)
HEADER = struct.Struct(">I")
#: the functions a worker runs, by name (nothing else can be asked of it)
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "page": read_page,
    "share": read_share,
    "entries": _dedup_entries,
}


class WorkerDied(RuntimeError):
    """A parse process ended while it held pages."""


class WorkerError(RuntimeError):
    """A page made the reading function raise in the worker."""


def frame(obj: Any) -> bytes:
    """``obj`` pickled, with its length in front.

    >>> frame(("page", 1))[:4] == HEADER.pack(len(pickle.dumps(("page", 1), 5)))
    True
    """
    data = pickle.dumps(obj, protocol=5)
    return HEADER.pack(len(data)) + data


class _Worker(asyncio.Protocol):
    """One worker process: its pipes, and the answers it still owes."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.alive = True
        self._buffer = bytearray()
        self._next_id = 0
        self._writer: asyncio.WriteTransport | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        # frames sent this turn of the loop: written together (one system call)
        self._outbox: list[bytes] = []

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "newscrawl.extract.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        await loop.connect_read_pipe(lambda: self, self._proc.stdout)
        self._writer, _ = await loop.connect_write_pipe(asyncio.Protocol, self._proc.stdin)

    def submit(self, name: str, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        assert self._writer is not None
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[self._next_id] = future
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outbox.append(frame((self._next_id, name, args)))
        return future

    def _flush(self) -> None:
        frames, self._outbox = self._outbox, []
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(b"".join(frames))

    # asyncio.Protocol, for the worker's stdout
    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buffer)
            if len(self._buffer) < HEADER.size + size:
                return
            job, ok, value = pickle.loads(self._buffer[HEADER.size : HEADER.size + size])
            del self._buffer[: HEADER.size + size]
            future = self.pending.pop(job, None)
            if future is None or future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(WorkerError(value))

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(WorkerDied(f"parse process {self.index} ended"))

    def close(self, timeout: float = 10.0) -> float:
        """Stop the worker; returns the CPU seconds it used."""
        if self._writer is not None:
            self._writer.close()
        proc, self._proc = self._proc, None
        if proc is None:
            return 0.0
        # the worker ends at EOF on its stdin: close it now (the transport
        # would only close it on a later turn of the loop)
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            answers = proc.stdout.fileno() if proc.stdout is not None else None
        except ValueError:  # already closed: the worker died
            answers = None
        deadline = time.monotonic() + timeout
        while True:
            if answers is not None:
                self._read_answers(answers)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                return float(usage.ru_utime + usage.ru_stime)
            if time.monotonic() > deadline:
                proc.kill()
            time.sleep(0.005)

    def _read_answers(self, fd: int) -> None:
        """Read what the worker answers while it is being stopped: the event
        loop does not read its pipe meanwhile, and a worker whose answer does
        not fit in the pipe would block and never end. The answers settle
        their calls as usual."""
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:  # nothing more for now (non-blocking pipe), or closed
                return
            if not chunk:
                return
            self.data_received(chunk)


class ParsePool:
    """``processes`` parse processes (0: read inline, in the caller's process),
    started at the first page (the event loop must run)."""

    def __init__(self, processes: int) -> None:
        self.processes = max(0, processes)
        #: a worker died: pages are read inline from then on
        self.broken = False
        #: closed: calls from then on (the last dedup batches) run inline
        self.closed = False
        self._workers: list[_Worker] = []
        self._starting: asyncio.Task[None] | None = None
        #: calls on their way to a worker or waiting for its answer
        self._active = 0

    async def page(
        self,
        body: bytes,
        encoding: str,
        url: str,
        kind: str,
        canonical: Callable[[str], str] | None = None,
    ) -> PageRead:
        """:func:`~newscrawl.extract.read.read_page`, in a worker
        (``canonical``: a module-level function, sent by name)."""
        result: PageRead = await self._run("page", body, encoding, url, kind, canonical)
        return result

    async def share(self, body: bytes) -> ShareRead:
        """:func:`~newscrawl.extract.read.read_share`, in a worker."""
        result: ShareRead = await self._run("share", body)
        return result

    async def entries(
        self, articles: list[tuple[str, str, datetime | None]], scheme: Scheme, min_chars: int
    ) -> tuple[list[Entry], int]:
        """:func:`~newscrawl.dedup.index.make_entries` (the near-duplicate
        index's signatures), in a worker."""
        result: tuple[list[Entry], int] = await self._run("entries", articles, scheme, min_chars)
        return result

    @property
    def offloaded(self) -> bool:
        """Whether calls now run in a worker (not inline: no processes, one
        died, or the pool is closed)."""
        return bool(self.processes) and not self.broken and not self.closed

    async def _run(self, name: str, *args: Any) -> Any:
        if not self.offloaded:
            return FUNCTIONS[name](*args)
        self._active += 1
        try:
            return await self._in_worker(name, args)
        finally:
            self._active -= 1

    async def _in_worker(self, name: str, args: tuple[Any, ...]) -> Any:
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        await asyncio.shield(self._starting)
        if self.closed:  # closed while the workers started
            return FUNCTIONS[name](*args)
        workers = [worker for worker in self._workers if worker.alive]
        if not workers:
            self._break()
            return FUNCTIONS[name](*args)
        worker = min(workers, key=lambda w: len(w.pending))
        try:
            return await worker.submit(name, args)
        except WorkerDied:
            if not self.closed:  # closed under a call in flight: no failure
                self._break()
            return FUNCTIONS[name](*args)
        except WorkerError:
            # read again here, so the error is raised (and logged) with its traceback
            return FUNCTIONS[name](*args)

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        for index in range(self.processes):
            worker = _Worker(index)
            await worker.start(loop)
            self._workers.append(worker)

    async def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait (at most ``timeout`` seconds) until no call is in a worker:
        before :meth:`close`, so that a call in flight (the dedup pipeline's
        last batch, when the spider closes) is answered, not cut."""
        deadline = time.monotonic() + timeout
        while self._active and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def _break(self) -> None:
        if not self.broken:
            logger.error("A parse process died: pages are read in the crawler process from now on")
            self.broken = True

    def close(self) -> float:
        """Stop the workers (each ends once it has answered what it was sent);
        returns the CPU seconds they used."""
        self.closed = True
        workers, self._workers = self._workers, []
        return sum(worker.close() for worker in workers)
