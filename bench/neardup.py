"""Benchmark of the near-duplicate index: time, database work and memory per
article as the index grows to 100,000 and 1,000,000 articles, precision and
recall, and what a second process pays to open it.

    python -m bench.neardup                         # 100k and 1M, measured
    python -m bench.neardup --sizes 100000          # 100k only
    python -m bench.neardup --quick                 # a smoke run (seconds)
    MONGO_URI=mongodb://... python -m bench.neardup  # against a real mongod

Articles are synthetic (:mod:`newscrawl.dedup.synthetic`): originals, copies
with a known share of sentences edited (0 to 30 %), related stories quoting
30 % of an original. Everything goes through the real
:class:`~newscrawl.dedup.index.DuplicateIndex` in batches of 100 (the
store's batch size), in a fresh database of the server named by
``--mongo-uri`` / ``MONGO_URI``, else an embedded SecantusDB started for
the run (whose CPU time is then measured too, or give ``--server-pid``).

For each size: the index is filled by one "process" (one ``DuplicateIndex``)
except the copies among the last 1 % of articles (500 at least), and saves
its band table when it closes; then a fresh process opens the filled index
twice (its band table loaded from MongoDB, then from that snapshot; both
timed) and indexes those copies: they must link to the first one's
articles. Precision and recall are over every labelled copy. Prints a
Markdown table and writes ``bench/out/neardup.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import platform
import resource
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datasketch import MinHash
from pymongo import MongoClient, monitoring
from pymongo.database import Database

from newscrawl.dedup.index import (
    INDEX_COLLECTION,
    WRITERS_COLLECTION,
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
#: copies among this last share of the articles (500 articles at least) are
#: indexed by the second process
HELD_BACK = 0.01


@dataclass
class ScaleRun:
    """One fill of the index up to ``size`` articles."""

    size: int
    seconds: float = 0.0
    #: index time (read, write, refresh, search, verify, link; database
    #: included) per article, whole fill
    ms_per_article: float = 0.0
    #: the same over the last 10 % of the fill (the index nearly full)
    ms_per_article_at_size: float = 0.0
    #: signature CPU per article (normalise, MinHash, band keys)
    cpu_ms_per_article: float = 0.0
    #: database server CPU per article during the fill (None: not measured)
    server_ms_per_article: float | None = None
    candidates_per_article: float = 0.0
    #: candidate signatures read from the database per article
    fetched_per_article: float = 0.0
    #: database commands per batch of 100, by name
    commands_per_batch: dict[str, float] = field(default_factory=dict)
    #: bytes per article in the database (dedup_index and dedup_writers)
    data_bytes_per_article: float = 0.0
    index_bytes_per_article: float = 0.0
    #: the band table's arrays per article, in the process
    process_bytes_per_article: float = 0.0
    band_table_runs: int = 0
    process_peak_rss_mb: float = 0.0
    #: entries the first process indexed (all but the held-back copies)
    first_process_entries: int = 0
    #: a second process opening the filled index: entries loaded, time, bytes
    reopen_entries: int = 0
    reopen_seconds: float = 0.0
    reopen_server_seconds: float | None = None
    reopen_process_bytes_per_article: float = 0.0
    #: peak RSS of that process (Python, numpy, pymongo and the table)
    reopen_peak_rss_mb: float = 0.0
    #: the first process saved its band table at close (for the next run) ...
    snapshot_save_seconds: float = 0.0
    snapshot_bytes_per_article: float = 0.0
    #: ... which the second process opens: entries restored, time, server CPU
    reopen_snapshot_restored: int = 0
    reopen_snapshot_seconds: float = 0.0
    reopen_snapshot_server_seconds: float | None = None
    #: copies indexed by the second process, linked to the first one's originals
    second_process_copies: int = 0
    second_process_recall: float = 0.0
    quality: Quality | None = None


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


@dataclass(frozen=True)
class Label:
    """What quality needs of a copy (the bodies are not kept; articles
    without a label are originals or related stories)."""

    copy_of: str
    edit: float


class Commands(monitoring.CommandListener):
    """Counts the commands a client sends, by name."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        with self._lock:
            self.counts[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def peak_rss_mb() -> float:
    """This process's peak resident memory, MB: ``VmHWM`` (reset by exec,
    unlike ``ru_maxrss``, which a spawned process inherits from its parent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process (None when not measured)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _database(uri: str | None) -> tuple[str, EmbeddedMongo | None, str]:
    """A server URI (starting an embedded one when none is given) and a fresh db name."""
    embedded = None
    if uri is None:
        folder = Path(tempfile.mkdtemp(prefix="neardup-bench-"))
        embedded = EmbeddedMongo(folder / "mongo")
        uri = embedded.start()
    return uri, embedded, f"bench_neardup_{uuid.uuid4().hex[:8]}"


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
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
    for name in (INDEX_COLLECTION, WRITERS_COLLECTION):
        stats = db.command("collStats", name)
        data += int(stats.get("size", 0))
        indexes += int(stats.get("totalIndexSize", 0))
    return data, indexes


def measure_quality(db: Database[Any], articles: int, labels: dict[str, Label]) -> Quality:
    """Precision and recall of the links in the index, against the labels
    of the copies."""
    wanted = set(labels) | {label.copy_of for label in labels.values()}
    roots: dict[str, str] = {}
    out = Quality(articles=articles)
    for doc in db[INDEX_COLLECTION].find({}, {"root": 1}):
        key, root = doc["_id"], doc["root"]
        if key in wanted:
            roots[key] = root
        if root == key:
            continue
        out.links += 1
        a, b = labels.get(key), labels.get(root)
        if (a is not None and a.copy_of == root) or (b is not None and b.copy_of == key):
            out.correct_links += 1
        else:
            out.false_links += 1
    found: dict[float, list[int]] = {}
    for key, label in labels.items():
        out.copies += 1
        root = roots.get(key)
        same = root is not None and root == roots.get(label.copy_of)
        counts = found.setdefault(label.edit, [0, 0])
        counts[0] += int(same)
        counts[1] += 1
    small = [counts for edit, counts in found.items() if edit <= SMALL_EDIT]
    out.small_edit_copies = sum(c[1] for c in small)
    out.recall = round(sum(c[0] for c in small) / max(1, out.small_edit_copies), 4)
    out.precision = round(out.correct_links / max(1, out.links), 4)
    out.recall_by_edit = {f"{edit:.2f}": round(c[0] / c[1], 4) for edit, c in sorted(found.items())}
    return out


def quality(db: Database[Any], scheme: Scheme, originals: int, seed: int) -> Quality:
    """Precision and recall of the links the index makes on a labelled set."""
    index = DuplicateIndex(db, scheme)
    index.ensure()
    articles = list(labelled_set(originals, seed=seed))
    for batch in _batches(articles, BATCH):
        index.process(_entries(batch, scheme)[0])
    index.close()
    labels = {a.key: Label(a.copy_of, a.edit) for a in articles if a.copy_of is not None}
    return measure_quality(db, len(articles), labels)


def scale(
    uri: str,
    db: Database[Any],
    scheme: Scheme,
    size: int,
    seed: int,
    commands: Commands,
    server_pid: int | None,
    snapshot_dir: Path,
) -> ScaleRun:
    """Fill a fresh index with ``size`` synthetic articles, batch by batch,
    then open it from a second process and index the held-back copies."""
    first = DuplicateIndex(db, scheme, snapshot_dir=snapshot_dir)
    first.ensure()
    first.open()
    run = ScaleRun(size=size)
    labels: dict[str, Label] = {}
    held: list[Synthetic] = []
    hold_from = size - max(int(size * HELD_BACK), min(size // 2, 500))
    done = candidates = fetched = batches = 0
    cpu = index_seconds = tail_seconds = 0.0
    tail_from = int(size * 0.9)
    tail_count = 0
    commands.counts.clear()
    server_before = _cpu_seconds(server_pid)
    articles = labelled_set(int(size / 1.25) + 1, seed=seed)
    for batch in _batches(articles, BATCH):
        batch = batch[: size - done]
        if not batch:
            break
        for article in batch:
            if article.copy_of is not None:
                labels[article.key] = Label(article.copy_of, article.edit)
        position = done
        done += len(batch)
        if done > hold_from:
            late = {a.key for at, a in enumerate(batch, position) if at >= hold_from and a.copy_of}
            held += [a for a in batch if a.key in late]
            batch = [a for a in batch if a.key not in late]
        entries, spent = _entries(batch, scheme)
        cpu += spent
        started = time.perf_counter()
        result = first.process(entries)
        seconds = time.perf_counter() - started
        index_seconds += seconds
        batches += 1
        candidates += result.candidates
        fetched += result.fetched
        if done > tail_from:
            tail_seconds += seconds + spent
            tail_count += len(batch)
        if done % 50_000 < BATCH:
            print(
                f"  {done:>9,} articles, {(index_seconds + cpu) / done * 1e3:.2f} ms/article, "
                f"table {first.memory_bytes / max(1, len(first.table)):.0f} B/article",
                file=sys.stderr,
            )
        if done >= size:
            break
    server_after = _cpu_seconds(server_pid)
    started = time.perf_counter()
    first.close()
    run.snapshot_save_seconds = round(time.perf_counter() - started, 2)
    indexed = len(first.table)
    run.first_process_entries = indexed
    run.seconds = round(cpu + index_seconds, 1)
    run.ms_per_article = round((cpu + index_seconds) / indexed * 1e3, 3)
    run.ms_per_article_at_size = round(tail_seconds / max(1, tail_count) * 1e3, 3)
    run.cpu_ms_per_article = round(cpu / indexed * 1e3, 3)
    if server_before is not None and server_after is not None:
        run.server_ms_per_article = round((server_after - server_before) / indexed * 1e3, 3)
    run.candidates_per_article = round(candidates / indexed, 3)
    run.fetched_per_article = round(fetched / indexed, 3)
    run.commands_per_batch = {
        name: round(count / max(1, batches), 2) for name, count in commands.counts.most_common()
    }
    run.process_bytes_per_article = round(first.memory_bytes / indexed, 1)
    run.band_table_runs = first.table.runs
    saved = sum(path.stat().st_size for path in snapshot_dir.glob("*.npz"))
    run.snapshot_bytes_per_article = round(saved / indexed, 1)
    del first
    gc.collect()

    run.process_peak_rss_mb = peak_rss_mb()

    # a second process: opens the filled index, indexes the held-back copies
    print(f"  a second process opens {indexed:,} entries ...", file=sys.stderr)
    held_articles = [(a.key, a.body, a.published_at) for a in held]
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        second = pool.apply(
            second_process,
            (uri, db.name, asdict(scheme), held_articles, server_pid, snapshot_dir),
        )
    run.reopen_entries = second["entries"]
    run.reopen_seconds = round(second["seconds"], 2)
    run.reopen_server_seconds = second["server_seconds"]
    run.reopen_snapshot_restored = second["restored"]
    run.reopen_snapshot_seconds = round(second["snapshot_seconds"], 2)
    run.reopen_snapshot_server_seconds = second["snapshot_server_seconds"]
    run.reopen_process_bytes_per_article = round(second["table_bytes"] / max(1, indexed), 1)
    run.reopen_peak_rss_mb = second["peak_rss_mb"]
    data, indexes = _collection_bytes(db)
    run.data_bytes_per_article = round(data / (indexed + len(held)), 1)
    run.index_bytes_per_article = round(indexes / (indexed + len(held)), 1)
    print("  precision and recall ...", file=sys.stderr)
    run.quality = measure_quality(db, done, labels)
    roots = {
        doc["_id"]: doc["root"]
        for doc in db[INDEX_COLLECTION].find(
            {"_id": {"$in": [a.key for a in held] + [str(a.copy_of) for a in held]}}, {"root": 1}
        )
    }
    small = [a for a in held if a.edit <= SMALL_EDIT]
    linked = [a for a in small if roots.get(a.key) == roots.get(str(a.copy_of), "")]
    run.second_process_copies = len(small)
    run.second_process_recall = round(len(linked) / max(1, len(small)), 4)
    return run


def second_process(
    uri: str,
    name: str,
    scheme_fields: dict[str, Any],
    articles: list[tuple[str, str, Any]],
    server_pid: int | None,
    snapshot_dir: Path,
) -> dict[str, Any]:
    """In a fresh process: open the index twice, its band table loaded from
    MongoDB, then from the first process's snapshot (and MongoDB since),
    and index ``articles`` with the latter; what it cost."""
    scheme = Scheme(**scheme_fields)
    client: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True)
    out: dict[str, Any] = {}

    def server_seconds(before: float | None, after: float | None) -> float | None:
        return None if before is None or after is None else round(after - before, 2)

    try:
        full = DuplicateIndex(client[name], scheme)
        full.ensure()
        before = _cpu_seconds(server_pid)
        loaded = full.open()
        out["server_seconds"] = server_seconds(before, _cpu_seconds(server_pid))
        out |= {"entries": loaded.entries, "seconds": loaded.seconds}
        out["table_bytes"] = full.memory_bytes
        full.close()
        del full
        gc.collect()
        index = DuplicateIndex(client[name], scheme, snapshot_dir=snapshot_dir)
        before = _cpu_seconds(server_pid)
        loaded = index.open()
        out["snapshot_server_seconds"] = server_seconds(before, _cpu_seconds(server_pid))
        out |= {"restored": loaded.restored, "snapshot_seconds": loaded.seconds}
        for batch in _batches(articles, BATCH):
            made = [make_entry(key, body, when, scheme, MIN_CHARS) for key, body, when in batch]
            index.process([entry for entry in made if entry is not None])
        index.close()
        out["peak_rss_mb"] = peak_rss_mb()
        return out
    finally:
        client.close()


def markdown(report: dict[str, Any]) -> str:
    cpu = report["cpu_us"]

    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value}"

    lines = [
        f"Near-duplicate index: {report['scheme']}, threshold {report['threshold']}, "
        f"server {report['server']}, batches of {report['batch']}",
        "",
        "| articles | index ms/article (fill) | at size | signature CPU ms | server CPU "
        "ms/article | candidates/article | signatures read/article | MongoDB B/article "
        "(data + indexes) | in-process B/article | peak RSS MB | second process: open s "
        "(server s), peak RSS MB | from the snapshot: open s (server s) | its copies linked "
        "| precision | recall |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | ---: | ---: |",
    ]
    for run in report["scale"]:
        q = run["quality"]
        lines.append(
            f"| {run['size']:,} | {run['ms_per_article']} | {run['ms_per_article_at_size']} "
            f"| {run['cpu_ms_per_article']} | {ms(run['server_ms_per_article'])} "
            f"| {run['candidates_per_article']} | {run['fetched_per_article']} "
            f"| {run['data_bytes_per_article'] + run['index_bytes_per_article']:.0f} "
            f"({run['data_bytes_per_article']:.0f} + {run['index_bytes_per_article']:.0f}) "
            f"| {run['process_bytes_per_article']} | {run['process_peak_rss_mb']} "
            f"| {run['reopen_seconds']} ({ms(run['reopen_server_seconds'])}), "
            f"{run['reopen_peak_rss_mb']} "
            f"| {run['reopen_snapshot_seconds']} ({ms(run['reopen_snapshot_server_seconds'])}) "
            f"| {run['second_process_recall']} of {run['second_process_copies']} "
            f"| {q['precision']} ({q['false_links']} false) | {q['recall']} |"
        )
    if report["scale"]:
        last = report["scale"][-1]
        per_batch = ", ".join(f"{k} {v}" for k, v in last["commands_per_batch"].items())
        lines += ["", f"Database commands per batch of {report['batch']}: {per_batch}"]
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
    parser.add_argument(
        "--sizes", default="100000,1000000", help="index sizes to measure, comma-separated"
    )
    parser.add_argument("--quality", type=int, default=10_000, help="originals in the labelled set")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--ngram", type=int, default=5)
    parser.add_argument("--num-perm", type=int, default=128)
    parser.add_argument("--mongo-uri", default=os.environ.get("MONGO_URI"))
    parser.add_argument(
        "--server-pid", type=int, default=None, help="pid of the database server (its CPU time)"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    originals = args.quality
    if args.quick:
        sizes, originals = [300, 1000], 150
    scheme = make_scheme(args.threshold, args.num_perm, args.ngram)
    uri, embedded, name = _database(args.mongo_uri)
    server_pid = embedded.pid if embedded is not None else args.server_pid
    commands = Commands()
    client: MongoClient[dict[str, Any]] = MongoClient(
        uri, tz_aware=True, event_listeners=[commands]
    )
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
            snapshots = Path(tempfile.mkdtemp(prefix="neardup-snapshot-"))
            try:
                runs.append(scale(uri, db, scheme, size, 31, commands, server_pid, snapshots))
            finally:
                client.drop_database(db.name)
                shutil.rmtree(snapshots, ignore_errors=True)
    finally:
        client.close()
        if embedded is not None:
            embedded.stop()
            # the server's files (the databases were dropped, WiredTiger's files stay)
            shutil.rmtree(embedded.storage_path.parent, ignore_errors=True)
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
