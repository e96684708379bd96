"""Duplicates under different keys: exact copies and near copies of a story.

- :mod:`newscrawl.dedup.text`: the body as compared (normalised) and its hash;
- :mod:`newscrawl.dedup.minhash`: MinHash signatures over character n-grams
  (datasketch's scheme, vectorised), LSH band keys and signature sketches
  (pure functions);
- :mod:`newscrawl.dedup.bandtable`: the LSH band table each process keeps
  in memory (pure numpy);
- :mod:`newscrawl.dedup.clusters`: which clusters merge and which article
  is the root (the earliest published) (pure);
- :mod:`newscrawl.dedup.index`: the index (entries in MongoDB's
  ``dedup_index`` and ``dedup_writers``, the band table in memory) and
  ``duplicate_of`` on ``articles``;
- :mod:`newscrawl.dedup.synthetic`: labelled synthetic articles (tests, bench).

Used by :class:`newscrawl.pipelines.dedup.DedupPipeline`; measured by
``python -m bench.neardup``.
"""

from __future__ import annotations

#: fields of a stored article kept by the dedup pipeline (not by the store)
ARTICLE_FIELDS = ("duplicate_of",)
