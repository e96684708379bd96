"""``python -m bench.storepath``: where the store's write path spends its time.

The store pipeline does three things per item (see
:mod:`newscrawl.pipelines.mongo`): on the reactor thread only
``to_document`` (a copy of the item's fields); in a worker thread, per batch,
``prepare_batch`` (keys escaped, values checked against the schema, size
bounded) and ``BatchStore.write`` (one read and one bulk write through
``ArticleWriter``, plus the rejections); while the database is away, a
journal append (JSON, ``fsync``) instead of the write. Each is timed here on
the same articles (``--articles``, default 3,000; bodies of
``--body-chars``), into an embedded SecantusDB (or ``--mongo-uri``), next to
one ``insert_one`` per article, the naive way. Results on stdout and in
``bench/out/storepath/results.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from itemadapter import ItemAdapter
from pymongo import MongoClient

from bench.export import item
from newscrawl.storage.batches import BatchStore, journal_records, prepare_batch
from newscrawl.storage.documents import merge, to_document
from newscrawl.storage.embedded import EmbeddedMongo
from newscrawl.storage.journal import Journal
from newscrawl.storage.migrations import ensure_collections
from newscrawl.storage.schema import load_schema

logger = logging.getLogger("bench.storepath")

OUT = Path(__file__).resolve().parent / "out" / "storepath"


def timed(count: int, work: Callable[[], object]) -> dict[str, float]:
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 3),
        "docs_per_second": round(count / seconds, 1),
        "us_per_doc": round(seconds / count * 1e6, 1),
    }


def measure(uri: str, articles: int, body_chars: int, batch: int) -> dict[str, Any]:
    items = [item(n, body_chars) for n in range(articles)]
    schema = load_schema()
    now = datetime.now(tz=UTC)
    out: dict[str, Any] = {}
    docs: list[dict[str, Any]] = []
    out["to_document (reactor thread)"] = timed(
        articles, lambda: docs.extend(to_document(ItemAdapter(i)) for i in items)
    )
    batches = [docs[i : i + batch] for i in range(0, len(docs), batch)]
    prepared: list[Any] = []
    out["prepare_batch (worker)"] = timed(
        articles,
        lambda: prepared.extend(prepare_batch(b, [], "bench", now, schema) for b in batches),
    )
    client: Any = MongoClient(uri, tz_aware=True)
    try:
        for name in ("bench_storepath_writer", "bench_storepath_one"):
            client.drop_database(name)
            ensure_collections(client[name])
        store = BatchStore(client["bench_storepath_writer"])
        out[f"BatchStore.write, batches of {batch} (worker)"] = timed(
            articles, lambda: [store.write(p) for p in prepared]
        )
        stored = [merge(None, doc, "bench", now)[0] for doc in docs]
        collection = client["bench_storepath_one"].articles
        out["insert_one per article"] = timed(
            articles, lambda: [collection.insert_one(doc) for doc in stored]
        )
        for name in ("bench_storepath_writer", "bench_storepath_one"):
            client.drop_database(name)
    finally:
        client.close()
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp))

        def append_all() -> None:
            for batch_ in prepared:
                journal.append(journal_records(batch_))

        out["journal append (database away)"] = timed(articles, append_all)
        journal.seal()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storepath", description=__doc__)
    parser.add_argument("--articles", type=int, default=3000)
    parser.add_argument("--body-chars", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=100, help="MONGO_BATCH_SIZE")
    parser.add_argument("--mongo-uri", help="a server to use (default: an embedded one)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    server = None
    uri = args.mongo_uri
    if uri is None:
        server = EmbeddedMongo(args.out / "mongo")
        uri = server.start()
    try:
        results = measure(uri, args.articles, args.body_chars, args.batch)
    finally:
        if server is not None:
            server.stop()
    lines = [
        f"{args.articles} articles of {args.body_chars} characters, batches of {args.batch}",
        "",
        "| step | docs/s | us per doc |",
        "| --- | ---: | ---: |",
    ]
    for name, row in results.items():
        lines.append(f"| {name} | {row['docs_per_second']} | {row['us_per_doc']} |")
    print("\n".join(lines))
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
