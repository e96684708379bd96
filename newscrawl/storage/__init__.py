"""How articles are kept: MongoDB through plain pymongo.

- :mod:`~newscrawl.storage.client`: ``open_store(settings)``, the shared
  client (``MONGO_URI``, else the embedded server);
- :mod:`~newscrawl.storage.embedded`: the embedded SecantusDB server process;
- :mod:`~newscrawl.storage.schema`: ``article.schema.json``, its validator,
  the collections and indexes; :mod:`~newscrawl.storage.migrations`: the
  schema version in ``newscrawl_meta`` and the steps that bring a database
  up to it;
- :mod:`~newscrawl.storage.documents`: items to documents and the merge rules;
- :mod:`~newscrawl.storage.sanitize`: hostile content made safe (keys,
  types, sizes) or refused;
- :mod:`~newscrawl.storage.writer`: one batch, one read, one bulk write;
- :mod:`~newscrawl.storage.batches`: a batch prepared, written or journaled;
- :mod:`~newscrawl.storage.journal`: the local JSONL journal kept while the
  database is away;
- :mod:`~newscrawl.storage.rejected`: ``articles_rejected``;
- :mod:`~newscrawl.storage.errors`: errors, and which are transient;
- :mod:`~newscrawl.storage.export` / :mod:`~newscrawl.storage.watch`: the
  articles out to other databases (watermarked exports, change streams);
- :mod:`~newscrawl.storage.signals`: ``articles_stored``.
"""
