"""The in-memory LSH band table and the signature sketches (pure): what the
table answers equals a brute-force scan, whatever the batch sizes and merges;
a sketch never rules out a pair that reaches the threshold."""

from __future__ import annotations

import random

import numpy as np
import pytest

from newscrawl.dedup.bandtable import PREFIX_BITS, BandTable
from newscrawl.dedup.minhash import (
    Scheme,
    equal_needed,
    estimated_jaccard,
    signature,
    sketch,
    sketch_equal,
)
from newscrawl.dedup.synthetic import Vocabulary, edit_sentences, story

SHIFT = 32 - PREFIX_BITS


def brute_force(stored: np.ndarray, ids: np.ndarray, query: np.ndarray) -> set[tuple[int, int]]:
    kept, asked = stored >> SHIFT, query >> SHIFT
    found = set()
    for row, prefixes in enumerate(asked):
        for match in ids[(kept == prefixes).any(axis=1)].tolist():
            found.add((row, match))
    return found


@pytest.mark.parametrize("space", [50, 5_000, 2**32])
def test_lookups_equal_a_brute_force_scan(space: int) -> None:
    """Batches of varied sizes (runs merge as they come); small key spaces
    make many rows share prefixes, also identical rows (exact copies)."""
    rng = np.random.default_rng(space % 1000)
    bands = 7
    table = BandTable(bands, sketch_bytes=2)
    stored, ids, sketches = [], [], []
    next_id = 10**12
    for _ in range(60):
        count = int(rng.integers(1, 300))
        prefixes = rng.integers(0, space, size=(count, bands), dtype=np.uint64)
        prefixes = (prefixes * np.uint64(2**32 // space if space < 2**32 else 1)).astype(np.uint32)
        if stored and rng.random() < 0.3:
            copied = min(count // 2, len(stored[-1]))
            prefixes[:copied] = stored[-1][:copied]  # copies of earlier rows
        batch_ids = np.arange(next_id, next_id + count, dtype=np.int64)
        batch_sketches = rng.integers(0, 256, size=(count, 2), dtype=np.uint8)
        next_id += count
        table.add(prefixes, batch_ids, batch_sketches)
        stored.append(prefixes)
        ids.append(batch_ids)
        sketches.append(batch_sketches)
    every = np.concatenate(stored)
    all_ids = np.concatenate(ids)
    all_sketches = dict(zip(all_ids.tolist(), np.concatenate(sketches).tolist(), strict=True))
    assert len(table) == len(all_ids)
    assert table.runs <= int(np.log2(len(all_ids))) + 1
    query = rng.integers(0, space, size=(40, bands), dtype=np.uint64).astype(np.uint32)
    query[:20] = every[rng.integers(0, len(every), 20)]
    rows, found_ids, found_sketches = table.lookup(query)
    assert set(zip(rows.tolist(), found_ids.tolist(), strict=True)) == brute_force(
        every, all_ids, query
    )
    # each row comes back with its own sketch
    for found, sketched in zip(found_ids.tolist(), found_sketches.tolist(), strict=True):
        assert all_sketches[found] == sketched


def test_memory_per_row_is_compact() -> None:
    rng = np.random.default_rng(3)
    table = BandTable(30, sketch_bytes=32)
    for start in range(0, 50_000, 1000):
        prefixes = rng.integers(0, 2**32, size=(1000, 30), dtype=np.uint64).astype(np.uint32)
        table.add(prefixes, np.arange(start, start + 1000), np.zeros((1000, 32), np.uint8))
    # 30 x 4 bytes, the bucket directory, the id (8) and the sketch (32)
    assert table.nbytes / len(table) < 180


def test_bad_shapes_are_refused() -> None:
    table = BandTable(3)
    with pytest.raises(ValueError, match="prefixes"):
        table.add(np.zeros((2, 4), np.uint32), [1, 2])
    with pytest.raises(ValueError, match="prefixes"):
        table.lookup(np.zeros((2, 2), np.uint32))


def test_a_sketch_never_rules_out_a_pair_over_the_threshold() -> None:
    scheme = Scheme(num_perm=128, ngram=5, threshold=0.5)
    needed = equal_needed(scheme)
    rng = random.Random(5)
    vocab = Vocabulary(rng)
    checked = 0
    for _ in range(60):
        base = story(rng, vocab)
        edited = edit_sentences(rng, vocab, base, rng.choice([0.05, 0.2, 0.4, 0.6, 0.9]))
        one, two = signature("".join(base), scheme), signature("".join(edited), scheme)
        equal = int(np.count_nonzero(one == two))
        bound = int(sketch_equal(sketch(one)[None], sketch(two)[None])[0])
        assert bound >= equal
        if estimated_jaccard(one, two) >= scheme.threshold:
            assert bound >= needed
            checked += 1
    assert checked > 10
