"""Benchmark of the near-duplicate index: CPU per article, index time and
size per article as the index grows, precision and recall.

    python -m bench.neardup                       # 100k measured, 1M extrapolated
    python -m bench.neardup --sizes 100000,1000000  # measure 1M too (hours on SecantusDB)
    python -m bench.neardup --quick               # a smoke run (seconds)
    MONGO_URI=mongodb://... python -m bench.neardup  # against a real mongod

Articles are synthetic (:mod:`newscrawl.dedup.synthetic`): originals, copies
with a known share of sentences edited (0 to 30 %), related stories quoting
30 % of an original. Everything goes through the real
:class:`~newscrawl.dedup.index.DuplicateIndex` in batches of 100 (the
store's batch size), in a fresh database of the server named by
``--mongo-uri`` / ``MONGO_URI``, else an embedded SecantusDB started for
the run. Prints a Markdown table and writes ``bench/out/neardup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datasketch import MinHash
from pymongo import MongoClient
from pymongo.database import Database

from newscrawl.dedup.index import (
    BANDS_COLLECTION,
    INDEX_COLLECTION,
    DuplicateIndex,
    Entry,
    make_entry,
)
from newscrawl.dedup.minhash import Scheme, band_keys, make_scheme, ngrams, signature
from newscrawl.dedup.synthetic import SMALL_EDIT, Synthetic, labelled_set
from newscrawl.dedup.text import normalize_text
from newscrawl.storage.embedded import EmbeddedMongo

OUT = Path(__file__).with_name("out") / "neardup.json"
BATCH = 100
MIN_CHARS = 100


@dataclass
class ScaleRun:
    """One fill of the index up to ``size`` articles."""

    size: int
    measured: bool
    seconds: float = 0.0
    #: index time (add + match + link, database included) per article, whole fill
    ms_per_article: float = 0.0
    #: the same over the last 10 % of the fill (the index nearly full)
    ms_per_article_at_size: float = 0.0
    #: signature CPU per article (normalise, MinHash, band keys)
    cpu_ms_per_article: float = 0.0
    candidates_per_article: float = 0.0
    #: bytes per article in the database: documents, indexes, both collections
    data_bytes_per_article: float = 0.0
    index_bytes_per_article: float = 0.0
    process_peak_rss_mb: float = 0.0
    note: str = ""


@dataclass
class Quality:
    articles: int = 0
    copies: int = 0
    small_edit_copies: int = 0
    links: int = 0
    correct_links: int = 0
    false_links: int = 0
    precision: float = 0.0
    #: copies with at most SMALL_EDIT of their sentences edited, linked to their original
    recall: float = 0.0
    recall_by_edit: dict[str, float] = field(default_factory=dict)


def _database(uri: str | None) -> tuple[str, EmbeddedMongo | None, str]:
    """A server URI (starting an embedded one when none is given) and a fresh db name."""
    embedded = None
    if uri is None:
        folder = Path(tempfile.mkdtemp(prefix="neardup-bench-"))
        embedded = EmbeddedMongo(folder / "mongo")
        uri = embedded.start()
    return uri, embedded, f"bench_neardup_{uuid.uuid4().hex[:8]}"


def _batches(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _entries(batch: Sequence[Synthetic], scheme: Scheme) -> tuple[list[Entry], float]:
    started = time.perf_counter()
    entries = []
    for article in batch:
        entry = make_entry(article.key, article.body, article.published_at, scheme, MIN_CHARS)
        if entry is not None:
            entries.append(entry)
    return entries, time.perf_counter() - started


def cpu_costs(scheme: Scheme, count: int) -> dict[str, float]:
    """Microseconds per article for each step, and datasketch's own
    ``update_batch`` (SHA-1 per n-gram) for comparison."""
    articles = [a.body for a in labelled_set(count, seed=11, copy_rate=0.0, related_rate=0.0)]
    texts = [normalize_text(body) for body in articles]

    def per_article(func: Any, values: Sequence[Any]) -> float:
        started = time.perf_counter()
        for value in values:
            func(value)
        return (time.perf_counter() - started) / len(values) * 1e6

    sigs = [signature(text, scheme) for text in texts]
    reference_count = max(1, count // 10)

    def datasketch_default(text: str) -> None:
        minhash = MinHash(num_perm=scheme.num_perm, seed=scheme.seed)
        minhash.update_batch([gram.encode("utf-8") for gram in ngrams(text, scheme.ngram)])

    return {
        "chars_per_article": sum(len(t) for t in texts) / len(texts),
        "normalize_us": per_article(normalize_text, articles),
        "signature_us": per_article(lambda t: signature(t, scheme), texts),
        "band_keys_us": per_article(lambda s: band_keys(s, scheme), sigs),
        "make_entry_us": per_article(
            lambda body: make_entry("k", body, None, scheme, MIN_CHARS), articles
        ),
        "datasketch_update_batch_sha1_us": per_article(datasketch_default, texts[:reference_count]),
    }


def _collection_bytes(db: Database[Any]) -> tuple[int, int]:
    data = indexes = 0
    for name in (INDEX_COLLECTION, BANDS_COLLECTION):
        stats = db.command("collStats", name)
        data += int(stats.get("size", 0))
        indexes += int(stats.get("totalIndexSize", 0))
    return data, indexes


def scale(db: Database[Any], scheme: Scheme, size: int, seed: int) -> ScaleRun:
    """Fill a fresh index with ``size`` synthetic articles, batch by batch."""
    index = DuplicateIndex(db, scheme)
    index.ensure()
    run = ScaleRun(size=size, measured=True)
    articles = labelled_set(int(size / 1.25) + 1, seed=seed)
    done = candidates = 0
    cpu = db_seconds = tail_seconds = 0.0
    tail_from = int(size * 0.9)
    tail_count = 0
    for batch in _batches(articles, BATCH):
        batch = batch[: size - done]
        if not batch:
            break
        entries, spent = _entries(batch, scheme)
        cpu += spent
        started = time.perf_counter()
        result = index.process(entries)
        seconds = time.perf_counter() - started
        db_seconds += seconds
        candidates += result.candidates
        if done + len(batch) > tail_from:
            tail_seconds += seconds + spent
            tail_count += len(batch)
        done += len(batch)
        if done % 10_000 < BATCH:
            print(
                f"  {done:>9} articles, {db_seconds / done * 1e3:.2f} ms/article", file=sys.stderr
            )
        if done >= size:
            break
    data, indexes = _collection_bytes(db)
    run.seconds = round(cpu + db_seconds, 1)
    run.ms_per_article = round((cpu + db_seconds) / done * 1e3, 3)
    run.ms_per_article_at_size = round(tail_seconds / max(1, tail_count) * 1e3, 3)
    run.cpu_ms_per_article = round(cpu / done * 1e3, 3)
    run.candidates_per_article = round(candidates / done, 3)
    run.data_bytes_per_article = round(data / done, 1)
    run.index_bytes_per_article = round(indexes / done, 1)
    run.process_peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return run


def extrapolate(base: ScaleRun, size: int) -> ScaleRun:
    """``size`` from a measured run: bytes per article stay (one document and
    a fixed number of index keys per article); time per article is taken as
    growing like the B-tree depth, log(size) / log(measured size)."""
    import math

    growth = math.log(size) / math.log(base.size)
    return ScaleRun(
        size=size,
        measured=False,
        seconds=round(base.ms_per_article_at_size * growth * size / 1e3, 1),
        ms_per_article=round(base.ms_per_article * growth, 3),
        ms_per_article_at_size=round(base.ms_per_article_at_size * growth, 3),
        cpu_ms_per_article=base.cpu_ms_per_article,
        candidates_per_article=base.candidates_per_article,
        data_bytes_per_article=base.data_bytes_per_article,
        index_bytes_per_article=base.index_bytes_per_article,
        note=f"extrapolated from {base.size:,} (not measured)",
    )


def quality(db: Database[Any], scheme: Scheme, originals: int, seed: int) -> Quality:
    """Precision and recall of the links the index makes on a labelled set."""
    index = DuplicateIndex(db, scheme)
    index.ensure()
    articles = list(labelled_set(originals, seed=seed))
    for batch in _batches(articles, BATCH):
        index.process(_entries(batch, scheme)[0])
    roots = {doc["_id"]: doc["root"] for doc in db[INDEX_COLLECTION].find({}, {"root": 1})}
    by_key = {a.key: a for a in articles}
    out = Quality(articles=len(articles))
    for key, root in roots.items():
        if root == key:
            continue
        out.links += 1
        a, b = by_key[key], by_key[root]
        if a.copy_of == root or b.copy_of == key:
            out.correct_links += 1
        else:
            out.false_links += 1
    found: dict[float, list[int]] = {}
    for article in articles:
        if article.copy_of is None:
            continue
        out.copies += 1
        same = roots.get(article.key) is not None and roots.get(article.key) == roots.get(
            article.copy_of
        )
        counts = found.setdefault(article.edit, [0, 0])
        counts[0] += int(same)
        counts[1] += 1
    small = [counts for edit, counts in found.items() if edit <= SMALL_EDIT]
    out.small_edit_copies = sum(c[1] for c in small)
    out.recall = round(sum(c[0] for c in small) / max(1, out.small_edit_copies), 4)
    out.precision = round(out.correct_links / max(1, out.links), 4)
    out.recall_by_edit = {f"{edit:.2f}": round(c[0] / c[1], 4) for edit, c in sorted(found.items())}
    return out


def markdown(report: dict[str, Any]) -> str:
    cpu = report["cpu_us"]
    lines = [
        f"Near-duplicate index: {report['scheme']}, threshold {report['threshold']}, "
        f"server {report['server']}",
        "",
        "| articles | ms/article (fill) | ms/article (at size) | signature CPU ms | "
        "candidates/article | data B/article | index B/article | peak RSS MB | note |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for run in report["scale"]:
        lines.append(
            f"| {run['size']:,} | {run['ms_per_article']} | {run['ms_per_article_at_size']} "
            f"| {run['cpu_ms_per_article']} | {run['candidates_per_article']} "
            f"| {run['data_bytes_per_article']} | {run['index_bytes_per_article']} "
            f"| {run['process_peak_rss_mb'] or ''} | {run['note'] or 'measured'} |"
        )
    q = report["quality"]
    lines += [
        "",
        f"CPU per article ({cpu['chars_per_article']:.0f} normalised characters): normalise "
        f"{cpu['normalize_us']:.0f} µs, signature {cpu['signature_us']:.0f} µs, band keys "
        f"{cpu['band_keys_us']:.0f} µs, whole entry {cpu['make_entry_us']:.0f} µs "
        f"(datasketch update_batch with its default SHA-1: "
        f"{cpu['datasketch_update_batch_sha1_us']:.0f} µs for the signature alone)",
        "",
        "| labelled set | articles | copies (edits <= 20 %) | links | false links | precision "
        "| recall | recall by edit share |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        f"| synthetic | {q['articles']:,} | {q['small_edit_copies']:,} | {q['links']:,} "
        f"| {q['false_links']} | {q['precision']} | {q['recall']} "
        f"| {', '.join(f'{k}: {v}' for k, v in q['recall_by_edit'].items())} |",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.neardup", description=__doc__)
    parser.add_argument("--sizes", default="100000", help="index sizes to measure, comma-separated")
    parser.add_argument(
        "--extrapolate", default="1000000", help="sizes to extrapolate from the largest measured"
    )
    parser.add_argument("--quality", type=int, default=10_000, help="originals in the labelled set")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--ngram", type=int, default=5)
    parser.add_argument("--num-perm", type=int, default=128)
    parser.add_argument("--mongo-uri", default=os.environ.get("MONGO_URI"))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    later = [int(s) for s in args.extrapolate.split(",") if s]
    originals = args.quality
    if args.quick:
        sizes, later, originals = [300], [3000], 150
    scheme = make_scheme(args.threshold, args.num_perm, args.ngram)
    uri, embedded, name = _database(args.mongo_uri)
    client: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True)
    started = time.perf_counter()
    try:
        print("CPU per article ...", file=sys.stderr)
        cpu = cpu_costs(scheme, 100 if args.quick else 2000)
        print(f"labelled set of {originals:,} originals ...", file=sys.stderr)
        db = client[f"{name}_quality"]
        try:
            measured_quality = quality(db, scheme, originals, seed=21)
        finally:
            client.drop_database(db.name)
        runs: list[ScaleRun] = []
        for size in sizes:
            print(f"filling the index with {size:,} articles ...", file=sys.stderr)
            db = client[f"{name}_{size}"]
            try:
                runs.append(scale(db, scheme, size, seed=31))
            finally:
                client.drop_database(db.name)
        if runs:
            runs += [extrapolate(runs[-1], size) for size in later if size > runs[-1].size]
    finally:
        client.close()
        if embedded is not None:
            embedded.stop()
    report = {
        "scheme": scheme.id,
        "threshold": scheme.threshold,
        "min_chars": MIN_CHARS,
        "batch": BATCH,
        "server": "embedded SecantusDB" if embedded is not None else "MONGO_URI",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_us": {k: round(v, 1) for k, v in cpu.items()},
        "quality": asdict(measured_quality),
        "scale": [asdict(run) for run in runs],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(markdown(report))
    print(f"\n(written to {args.out})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
