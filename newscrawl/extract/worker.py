"""A parse process (started by :class:`newscrawl.extract.pool.ParsePool`):
reads ``(job, name, args)`` frames on stdin, answers ``(job, ok, result)``
frames on stdout, and ends at EOF. ``name`` is one of
:data:`newscrawl.extract.pool.FUNCTIONS`; an exception is answered as its text
(the page is then read again in the crawler process, where it is logged)."""

from __future__ import annotations

import pickle
import sys
from typing import BinaryIO

from newscrawl.extract.pool import FUNCTIONS, HEADER, frame


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Answer frames until ``stdin`` ends."""
    while True:
        header = _read_exactly(stdin, HEADER.size)
        if header is None:
            return
        payload = _read_exactly(stdin, HEADER.unpack(header)[0])
        if payload is None:
            return
        job, name, args = pickle.loads(payload)
        try:
            answer = (job, True, FUNCTIONS[name](*args))
        except Exception as exc:  # answered: the caller reads the page again and raises
            answer = (job, False, f"{type(exc).__name__}: {exc}")
        stdout.write(frame(answer))
        stdout.flush()


if __name__ == "__main__":
    answers = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print() must not break the frames
    serve(sys.stdin.buffer, answers)
