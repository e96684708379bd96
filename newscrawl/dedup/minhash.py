"""MinHash signatures and LSH band keys over character n-grams (pure, no database).

The signatures are datasketch's (``MinHash``, scheme ``affine32``: the input
hash pre-mixed with the MurmurHash3 finalizer, then ``a * h + b`` mod 2**32
per permutation, with datasketch's permutations for the seed), computed
for all n-grams of a text at once with numpy instead of one Python call per
n-gram: :func:`signature` equals ``MinHash.update_batch`` given
:func:`ngram_hash` as ``hashfunc`` (tested below), at a fraction of the
cost. Bands and rows come from datasketch's ``MinHashLSH`` parameter choice
for the threshold, weighted towards recall (candidates are verified anyway).

A signature is ``num_perm`` uint32 values; its LSH band keys are one signed
64-bit integer per band; its *sketch* keeps 2 bits of each value (a quarter
of a byte), enough to rule out most pairs below the threshold without the
signature (:func:`sketch_equal` never counts fewer than the equal values).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from datasketch import MinHash, MinHashLSH

Signature = npt.NDArray[np.uint32]

DEFAULT_NUM_PERM = 128
DEFAULT_NGRAM = 5
DEFAULT_THRESHOLD = 0.5
DEFAULT_SEED = 1
#: (false positive, false negative) weights for datasketch's band/row choice:
#: a missed pair is lost, a false candidate only costs one comparison
LSH_WEIGHTS = (0.2, 0.8)
#: the datasketch permutation scheme the signatures follow
MINHASH_SCHEME = "affine32"

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
#: n-grams hashed per numpy block (bounds the (block x num_perm) temporary)
_BLOCK = 4096


@dataclass(frozen=True)
class Scheme:
    """How texts become signatures and band keys. Signatures and keys made
    under different schemes are not comparable, so the index stores
    :attr:`id` with each entry and only compares entries of one scheme."""

    num_perm: int = DEFAULT_NUM_PERM
    ngram: int = DEFAULT_NGRAM
    threshold: float = DEFAULT_THRESHOLD
    bands: int = 30
    rows: int = 4
    seed: int = DEFAULT_SEED

    @property
    def id(self) -> str:
        """What makes signatures and keys comparable (not the threshold:
        changing it alone needs no re-indexing).

        >>> Scheme().id
        'minhash-affine32-p128-s1-n5-b30r4'
        """
        return (
            f"minhash-{MINHASH_SCHEME}-p{self.num_perm}-s{self.seed}"
            f"-n{self.ngram}-b{self.bands}r{self.rows}"
        )


@lru_cache(maxsize=32)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) that datasketch's ``MinHashLSH`` picks for ``threshold``
    with :data:`LSH_WEIGHTS`.

    >>> lsh_params(0.5, 128)
    (30, 4)
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold!r}")
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=LSH_WEIGHTS)
    return int(lsh.b), int(lsh.r)


def make_scheme(
    threshold: float = DEFAULT_THRESHOLD,
    num_perm: int = DEFAULT_NUM_PERM,
    ngram: int = DEFAULT_NGRAM,
    seed: int = DEFAULT_SEED,
) -> Scheme:
    """A scheme with datasketch's bands and rows for ``threshold``.

    >>> s = make_scheme(0.5, 128, 5)
    >>> (s.bands, s.rows, s.bands * s.rows <= s.num_perm)
    (30, 4, True)
    >>> make_scheme(ngram=0)
    Traceback (most recent call last):
    ...
    ValueError: ngram must be at least 1, got 0
    """
    if ngram < 1:
        raise ValueError(f"ngram must be at least 1, got {ngram!r}")
    bands, rows = lsh_params(threshold, num_perm)
    return Scheme(num_perm, ngram, threshold, bands, rows, seed)


def ngram_hash(gram: str) -> int:
    """The 32-bit hash of one n-gram: FNV-1a (64-bit) over its code points,
    folded to 32 bits. The scalar twin of :func:`ngram_hashes`, usable as
    datasketch's ``hashfunc``.

    >>> ngram_hash("新华社北京"), ngram_hash("新华社北京") == ngram_hash("新华社北")
    (709401928, False)
    """
    h = 0xCBF29CE484222325
    for ch in gram:
        h = ((h ^ ord(ch)) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return (h ^ (h >> 32)) & 0xFFFFFFFF


def ngrams(text: str, n: int) -> list[str]:
    """Every character n-gram of ``text`` (the whole text when shorter).

    >>> ngrams("上海证券报", 3), ngrams("报", 3), ngrams("", 3)
    (['上海证', '海证券', '证券报'], ['报'], [])
    """
    if not text:
        return []
    if len(text) <= n:
        return [text]
    return [text[i : i + n] for i in range(len(text) - n + 1)]


def ngram_hashes(text: str, n: int) -> npt.NDArray[np.uint32]:
    """:func:`ngram_hash` of every n-gram of ``text``, vectorised.

    >>> ngram_hashes("上海证券报", 3).tolist() == [ngram_hash(g) for g in ngrams("上海证券报", 3)]
    True
    >>> ngram_hashes("报", 3).tolist() == [ngram_hash("报")], len(ngram_hashes("", 3))
    (True, 0)
    """
    if not text:
        return np.zeros(0, dtype=np.uint32)
    points = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    width = min(n, len(points))
    count = len(points) - width + 1
    h = np.full(count, _FNV_OFFSET, dtype=np.uint64)
    for k in range(width):
        h = (h ^ points[k : k + count]) * _FNV_PRIME
    return ((h ^ (h >> _SHIFT32)) & _LOW32).astype(np.uint32)


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """datasketch's permutation parameters ``(a, b)`` for ``num_perm`` and ``seed``."""
    a, b = MinHash(num_perm=num_perm, seed=seed, scheme=MINHASH_SCHEME).permutations
    return np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32)


def _fmix32(h: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """The MurmurHash3 32-bit finalizer (datasketch pre-mixes input hashes with it)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def signature(text: str, scheme: Scheme) -> Signature:
    """The MinHash signature of ``text``'s character n-grams (``num_perm``
    uint32 values); all 2**32-1 for an empty text, as datasketch's.

    >>> s = Scheme(num_perm=16, ngram=3)
    >>> text = "新华社北京2月18日电记者从国家知识产权局获悉"
    >>> reference = MinHash(num_perm=16, seed=1, hashfunc=ngram_hash)
    >>> reference.update_batch(ngrams(text, 3))
    >>> bool((signature(text, s) == reference.hashvalues).all())
    True
    >>> int(signature("", s)[0]) == 2**32 - 1
    True
    """
    a, b = permutations(scheme.num_perm, scheme.seed)
    result = np.full(scheme.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
    hashes = ngram_hashes(text, scheme.ngram)
    for start in range(0, len(hashes), _BLOCK):
        mixed = _fmix32(hashes[start : start + _BLOCK]).reshape(-1, 1)
        np.minimum(result, (mixed * a + b).min(axis=0), out=result)
    return result


def _fmix64(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The MurmurHash3 64-bit finalizer: an avalanching bijection."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


@lru_cache(maxsize=8)
def _band_seeds(scheme_id: str, bands: int) -> npt.NDArray[np.uint64]:
    """One 64-bit start value per band, from the scheme id and band number."""
    seeds = [
        int.from_bytes(hashlib.blake2b(f"{scheme_id}/{band}".encode(), digest_size=8).digest())
        for band in range(bands)
    ]
    return np.array(seeds, dtype=np.uint64)


def band_keys(sig: Signature, scheme: Scheme) -> list[int]:
    """One signed 64-bit key per LSH band: its rows folded into a start value
    that depends on the band number and the scheme (so keys of different
    bands or schemes never meet), vectorised over the bands.

    >>> s = make_scheme(0.5, 128, 5)
    >>> keys = band_keys(signature("一二三四五六七八九十", s), s)
    >>> len(keys), len(set(keys)), all(-(2**63) <= k < 2**63 for k in keys)
    (30, 30, True)
    >>> keys == band_keys(signature("一二三四五六七八九十", s), s)
    True
    """
    rows = np.asarray(sig[: scheme.bands * scheme.rows], dtype=np.uint64).reshape(
        scheme.bands, scheme.rows
    )
    h = _band_seeds(scheme.id, scheme.bands).copy()
    for row in range(scheme.rows):
        h = _fmix64(h ^ rows[:, row])
    keys: list[int] = h.view(np.int64).tolist()
    return keys


def estimated_jaccard(a: Signature, b: Signature) -> float:
    """The share of equal MinHash values: datasketch's ``MinHash.jaccard``.

    >>> s = Scheme(num_perm=128, ngram=3)
    >>> one = signature("今年以来全区累计推动落地项目十二个同比增长三成", s)
    >>> estimated_jaccard(one, one)
    1.0
    >>> estimated_jaccard(one, signature("截至目前已走访企业一百家协调解决问题", s)) < 0.1
    True
    """
    if len(a) != len(b):
        raise ValueError(f"signatures of different lengths: {len(a)} and {len(b)}")
    return float(np.count_nonzero(np.asarray(a) == np.asarray(b))) / len(a)


#: bits of each MinHash value a sketch keeps
SKETCH_BITS = 2
_PER_BYTE = 8 // SKETCH_BITS
#: for each byte of two sketches XORed: how many of its 2-bit groups are equal
_EQUAL_GROUPS = np.array(
    [sum(((byte >> shift) & 3) == 0 for shift in range(0, 8, SKETCH_BITS)) for byte in range(256)],
    dtype=np.uint8,
)


def sketch_bytes(num_perm: int) -> int:
    """Bytes of the sketch of a ``num_perm`` signature.

    >>> sketch_bytes(128), sketch_bytes(130)
    (32, 33)
    """
    return -(-num_perm // _PER_BYTE)


def sketch(sig: Signature) -> npt.NDArray[np.uint8]:
    """The low 2 bits of each MinHash value, four to a byte (zero-padded).

    >>> sketch(np.array([1, 2, 3, 0, 7], dtype=np.uint32)).tolist()
    [57, 3]
    """
    low = (np.asarray(sig, dtype=np.uint32) & np.uint32(3)).astype(np.uint8)
    padded = np.zeros(sketch_bytes(len(low)) * _PER_BYTE, dtype=np.uint8)
    padded[: len(low)] = low
    groups = padded.reshape(-1, _PER_BYTE)
    packed: npt.NDArray[np.uint8] = (
        groups[:, 0] | (groups[:, 1] << 2) | (groups[:, 2] << 4) | (groups[:, 3] << 6)
    ).astype(np.uint8)
    return packed


def sketch_equal(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.intp]:
    """Equal 2-bit groups of sketches, row by row (rows, bytes): at least the
    number of equal MinHash values, so ``sketch_equal >= k`` holds for every
    pair with ``k`` equal values.

    >>> s = Scheme(num_perm=128, ngram=3)
    >>> one = signature("今年以来全区累计推动落地项目十二个同比增长三成", s)
    >>> two = signature("今年以来全区累计推动落地项目十三个同比增长三成", s)
    >>> equal = int(np.count_nonzero(one == two))
    >>> int(sketch_equal(sketch(one)[None], sketch(two)[None])[0]) >= equal
    True
    >>> int(sketch_equal(sketch(one)[None], sketch(one)[None])[0])
    128
    """
    counts: npt.NDArray[np.intp] = _EQUAL_GROUPS[np.bitwise_xor(a, b)].sum(axis=-1, dtype=np.intp)
    return counts


def equal_needed(scheme: Scheme) -> int:
    """The fewest equal values for :func:`estimated_jaccard` to reach the
    scheme's threshold.

    >>> equal_needed(make_scheme(0.5, 128, 5)), equal_needed(Scheme(num_perm=10, threshold=0.33))
    (64, 4)
    """
    for count in range(scheme.num_perm + 1):
        if float(count) / scheme.num_perm >= scheme.threshold:
            return count
    return scheme.num_perm + 1
