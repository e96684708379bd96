"""The LSH band table in memory: which indexed articles share a band with
new ones (pure numpy, no database).

Every article has one key per band (:func:`newscrawl.dedup.minhash.band_keys`);
two articles are candidates when they share the key of at least one band.
The table keeps, per band, the top 28 bits of each article's key and
answers "which rows have this key prefix in this band" for a whole batch
of articles at once. A prefix shared by chance (about ``rows / 2**28`` per
band and lookup) only adds a candidate, which the caller verifies. Each row
also carries an id (int64) and a fixed-size *sketch* (bytes the caller
chooses; the index keeps 2 bits of each MinHash value there, to drop most
candidates without reading their signature).

Compact: 4 bytes per (article, band) plus a bucket directory, the id and
the sketch: about 170 bytes per article for 30 bands and a 32-byte sketch.
The table is a few sorted *runs* (an LSM tree): a run holds a group of
added rows and, per band, their prefixes sorted and stored as

- ``offsets[band]``: where each of ``2**bits`` buckets (the prefix's top
  ``bits`` bits) starts; a run has at most 16 rows per bucket on average,
  so a lookup reads a few entries;
- ``entries[band]``: one uint32 per row, the prefix's other ``28 - bits``
  bits above the row's number in the run (``4 + bits`` bits: enough, as a
  run has at most ``16 * 2**bits`` rows).

A batch becomes a small run; runs of similar size merge (like a binary
counter), so there are about ``log2(rows / batch)`` runs and every entry is
re-sorted that many times. Nothing is ever removed: an id that no longer
names an article (re-indexed under a new id) is a candidate that
verification drops.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Rows = npt.NDArray[np.intp]

#: bits of each band key the table compares
PREFIX_BITS = 28
#: rows per bucket, at most, on average (sets a run's bucket count)
BUCKET_ROWS = 16
_ROW_SLACK = 4  # log2(BUCKET_ROWS)
_LOW32 = np.uint64(0xFFFFFFFF)
#: entries a merge handles at once (its temporary arrays: a few times 8 bytes each)
_GROUP_ENTRIES = 1 << 21


def prefixes(keys: Sequence[int] | npt.NDArray[np.int64]) -> U32:
    """The top 32 bits of signed 64-bit band keys (what the index stores;
    the table compares their top :data:`PREFIX_BITS`).

    >>> prefixes([-1, 0, 2**32, 2**63 - 1]).tolist()
    [4294967295, 0, 1, 2147483647]
    """
    signed = np.asarray(keys, dtype=np.int64)
    return (signed.view(np.uint64) >> np.uint64(32)).astype(np.uint32)


def bucket_bits(rows: int) -> int:
    """Bucket bits of a run of ``rows`` rows: at most :data:`BUCKET_ROWS`
    rows per bucket on average, so a row number fits ``4 + bits`` bits.

    >>> [bucket_bits(n) for n in (1, 16, 17, 100, 1_000_000)]
    [0, 0, 1, 3, 16]
    """
    bits = 0
    while rows > BUCKET_ROWS << bits:
        bits += 1
    if bits > PREFIX_BITS:
        raise ValueError(f"too many rows for one run: {rows}")
    return bits


class _Run:
    """Rows (ids, sketches) and, per band, their prefixes sorted (see the module doc)."""

    __slots__ = ("bits", "entries", "ids", "offsets", "sketches")

    @classmethod
    def restore(cls, ids: I64, sketches: U8, entries: U32, offsets: U32) -> _Run:
        """A run from the arrays of :meth:`BandTable.arrays`."""
        run = cls.__new__(cls)
        run.ids, run.sketches, run.entries, run.offsets = ids, sketches, entries, offsets
        run.bits = bucket_bits(len(ids))
        if offsets.shape[1] != (1 << run.bits) + 1 or len(entries) != offsets.shape[0] * len(ids):
            raise ValueError("the arrays of a run do not fit together")
        return run

    def __init__(self, ids: I64, sketches: U8, bands: Iterable[U64]) -> None:
        """``bands``: groups of bands in turn, (bands, rows) of ``prefix << 32
        | row``, each band sorted (a few bands at a time: a merge's temporary
        arrays are those of a group, not of the whole run)."""
        self.ids = ids
        self.sketches = sketches
        rows = len(ids)
        self.bits = bucket_bits(rows)
        low_bits = PREFIX_BITS - self.bits
        row_bits = np.uint64(_ROW_SLACK + self.bits)
        low_mask = np.uint64((1 << low_bits) - 1)
        width = 1 << self.bits
        entries: list[U32] = []
        offsets: list[U32] = []
        for combined in bands:
            group = len(combined)
            prefix = combined >> np.uint64(32)
            entries.append(
                (((prefix & low_mask) << row_bits) | (combined & _LOW32)).astype(np.uint32).ravel()
            )
            bucket = (prefix >> np.uint64(low_bits)).astype(np.intp)
            bucket += np.arange(group, dtype=np.intp)[:, None] * width
            starts = np.zeros((group, width + 1), dtype=np.uint32)
            counts = np.bincount(bucket.ravel(), minlength=group * width).reshape(group, width)
            np.cumsum(counts, axis=1, out=starts[:, 1:])
            offsets.append(starts)
        self.entries = np.concatenate(entries)
        self.offsets = np.concatenate(offsets)

    @property
    def rows(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        arrays = (self.ids, self.sketches, self.entries, self.offsets)
        return sum(int(array.nbytes) for array in arrays)

    def bands(self, first: int, stop: int) -> U64:
        """Bands ``first`` to ``stop`` (excluded) back as ``prefix << 32 |
        row``, (bands, rows), each sorted."""
        low_bits = np.uint64(PREFIX_BITS - self.bits)
        row_bits = _ROW_SLACK + self.bits
        values = self.entries[first * self.rows : stop * self.rows].astype(np.uint64)
        counts = np.diff(self.offsets[first:stop], axis=1).ravel()
        width = np.uint64(self.offsets.shape[1] - 1)
        buckets = np.repeat(np.arange(len(counts), dtype=np.uint64) % width, counts)
        prefix = (buckets << low_bits) | (values >> np.uint64(row_bits))
        combined = (prefix << np.uint64(32)) | (values & np.uint64((1 << row_bits) - 1))
        return combined.reshape(stop - first, self.rows)

    def lookup(self, query: U32) -> tuple[Rows, Rows]:
        """(query row, run row) of every entry whose band and prefix equal
        one of ``query`` (queries, bands) of :data:`PREFIX_BITS`-bit prefixes."""
        count, bands = query.shape
        low_bits = PREFIX_BITS - self.bits
        row_bits = _ROW_SLACK + self.bits
        flat = query.ravel()
        band = np.tile(np.arange(bands, dtype=np.intp), count)
        bucket = (flat >> np.uint32(low_bits)).astype(np.intp)
        starts = self.offsets[band, bucket].astype(np.intp)
        sizes = self.offsets[band, bucket + 1].astype(np.intp) - starts
        total = int(sizes.sum())
        if total == 0:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
        which = np.repeat(np.arange(len(flat), dtype=np.intp), sizes)
        first = np.cumsum(sizes) - sizes
        at = np.arange(total, dtype=np.intp) - np.repeat(first - starts - band * self.rows, sizes)
        values = self.entries.take(at)
        want = flat.take(which) & np.uint32((1 << low_bits) - 1)
        hit = (values >> np.uint32(row_bits)) == want
        rows = (values[hit] & np.uint32((1 << row_bits) - 1)).astype(np.intp)
        return which[hit] // bands, rows


def _groups(bands: int, rows: int) -> Iterator[tuple[int, int]]:
    """Bands in groups of about :data:`_GROUP_ENTRIES` entries.

    >>> list(_groups(5, 1_000_000))
    [(0, 2), (2, 4), (4, 5)]
    """
    size = max(1, _GROUP_ENTRIES // max(1, rows))
    for first in range(0, bands, size):
        yield first, min(bands, first + size)


def _build(prefix: U32, ids: I64, sketches: U8) -> _Run:
    """A run of new rows: ``prefix`` (rows, bands)."""
    rows, bands = prefix.shape
    row = np.arange(rows, dtype=np.uint64)
    shift = np.uint64(32 - PREFIX_BITS)

    def sorted_bands() -> Iterator[U64]:
        for first, stop in _groups(bands, rows):
            kept = prefix[:, first:stop].T.astype(np.uint64) >> shift
            combined = (kept << np.uint64(32)) | row
            combined.sort(axis=1)
            yield combined

    return _Run(ids, sketches, sorted_bands())


def _merge(older: _Run, newer: _Run) -> _Run:
    """One run of both (rows of ``newer`` after those of ``older``)."""
    shift = np.uint64(older.rows)

    def sorted_bands() -> Iterator[U64]:
        for first, stop in _groups(older.offsets.shape[0], older.rows + newer.rows):
            both = np.concatenate(
                [older.bands(first, stop), newer.bands(first, stop) + shift], axis=1
            )
            # two sorted halves per band: timsort merges them in linear time
            both.sort(axis=1, kind="stable")
            yield both

    return _Run(
        np.concatenate([older.ids, newer.ids]),
        np.concatenate([older.sketches, newer.sketches]),
        sorted_bands(),
    )


class BandTable:
    """Rows (an int64 id and a sketch each) by the prefixes of their LSH
    band keys.

    >>> table = BandTable(bands=3, sketch_bytes=1)
    >>> key = lambda *values: np.array(values, dtype=np.uint32) << np.uint32(4)
    >>> table.add(np.stack([key(1, 2, 3), key(4, 5, 6)]), [10, 11], np.array([[7], [8]], np.uint8))
    >>> table.add(np.stack([key(7, 5, 9)]), [12], np.array([[9]], np.uint8))
    >>> rows, ids, sketches = table.lookup(np.stack([key(4, 0, 0), key(0, 5, 3)]))
    >>> sorted(zip(rows.tolist(), ids.tolist(), sketches[:, 0].tolist()))
    [(0, 11, 8), (1, 10, 7), (1, 11, 8), (1, 12, 9)]
    >>> len(table), table.runs
    (3, 2)
    """

    def __init__(self, bands: int, sketch_bytes: int = 0) -> None:
        self.bands = bands
        self.sketch_bytes = sketch_bytes
        self._runs: list[_Run] = []

    def __len__(self) -> int:
        return sum(run.rows for run in self._runs)

    @property
    def runs(self) -> int:
        return len(self._runs)

    @property
    def nbytes(self) -> int:
        """Bytes held by the table's arrays."""
        return sum(run.nbytes for run in self._runs)

    def add(self, prefix: U32, ids: Sequence[int] | I64, sketches: U8 | None = None) -> None:
        """Add rows: ``prefix`` (rows, bands) of uint32 key prefixes, one
        int64 id per row, ``sketches`` (rows, sketch_bytes)."""
        prefix = np.asarray(prefix, dtype=np.uint32)
        ids = np.asarray(ids, dtype=np.int64)
        if sketches is None:
            sketches = np.zeros((len(ids), self.sketch_bytes), dtype=np.uint8)
        sketches = np.asarray(sketches, dtype=np.uint8)
        if prefix.ndim != 2 or prefix.shape != (len(ids), self.bands):
            raise ValueError(f"expected ({len(ids)}, {self.bands}) prefixes, got {prefix.shape}")
        if sketches.shape != (len(ids), self.sketch_bytes):
            raise ValueError(f"expected ({len(ids)}, {self.sketch_bytes}) sketch bytes")
        if not len(ids):
            return
        self._runs.append(_build(prefix, ids, sketches))
        while len(self._runs) > 1 and self._runs[-2].rows <= self._runs[-1].rows:
            newer = self._runs.pop()
            self._runs[-1] = _merge(self._runs[-1], newer)

    def lookup(self, prefix: U32) -> tuple[Rows, I64, U8]:
        """(query row, id, sketch) for every band a query row shares with a
        stored row (a pair once per shared band)."""
        prefix = np.asarray(prefix, dtype=np.uint32)
        if prefix.ndim != 2 or prefix.shape[1] != self.bands:
            raise ValueError(f"expected (n, {self.bands}) prefixes, got {prefix.shape}")
        kept = prefix >> np.uint32(32 - PREFIX_BITS)
        rows: list[Rows] = []
        ids: list[I64] = []
        sketches: list[U8] = []
        for run in self._runs:
            found, at = run.lookup(kept)
            rows.append(found)
            ids.append(run.ids.take(at))
            sketches.append(run.sketches.take(at, axis=0))
        if not rows:
            empty = np.zeros(0, dtype=np.intp)
            return empty, empty.astype(np.int64), np.zeros((0, self.sketch_bytes), np.uint8)
        return np.concatenate(rows), np.concatenate(ids), np.concatenate(sketches)

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The table as named arrays (to save it with ``numpy.savez``).

        >>> table = BandTable(bands=2, sketch_bytes=1)
        >>> table.add(np.array([[16, 32]], np.uint32), [5], np.array([[1]], np.uint8))
        >>> copy = BandTable.from_arrays(2, 1, table.arrays())
        >>> sorted(copy.candidates(np.array([[0, 32]], np.uint32))), len(copy)
        ([(0, 5)], 1)
        """
        arrays: dict[str, npt.NDArray[Any]] = {}
        for at, run in enumerate(self._runs):
            arrays[f"run{at}_ids"] = run.ids
            arrays[f"run{at}_sketches"] = run.sketches
            arrays[f"run{at}_entries"] = run.entries
            arrays[f"run{at}_offsets"] = run.offsets
        return arrays

    @classmethod
    def from_arrays(
        cls, bands: int, sketch_bytes: int, arrays: Mapping[str, npt.NDArray[Any]]
    ) -> BandTable:
        """The table :meth:`arrays` described (ValueError if they do not fit)."""
        table = cls(bands, sketch_bytes)
        at = 0
        while f"run{at}_ids" in arrays:
            run = _Run.restore(
                np.asarray(arrays[f"run{at}_ids"], dtype=np.int64),
                np.asarray(arrays[f"run{at}_sketches"], dtype=np.uint8),
                np.asarray(arrays[f"run{at}_entries"], dtype=np.uint32),
                np.asarray(arrays[f"run{at}_offsets"], dtype=np.uint32),
            )
            if run.offsets.shape[0] != bands or run.sketches.shape != (run.rows, sketch_bytes):
                raise ValueError("the saved table has other bands or sketches")
            table._runs.append(run)
            at += 1
        return table

    def candidates(self, prefix: U32) -> set[tuple[int, int]]:
        """The distinct (query row, id) pairs of :meth:`lookup`."""
        rows, ids, _sketches = self.lookup(prefix)
        return set(zip(rows.tolist(), ids.tolist(), strict=True))
