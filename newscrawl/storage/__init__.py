"""How articles are kept: MongoDB through plain pymongo.

- :mod:`~newscrawl.storage.client`: ``open_store(settings)``, the shared
  client (``MONGO_URI``, else the embedded server);
- :mod:`~newscrawl.storage.embedded`: the embedded SecantusDB server process;
- :mod:`~newscrawl.storage.schema`: ``article.schema.json``, its validator,
  the collections and indexes;
- :mod:`~newscrawl.storage.documents`: items to documents and the merge rules;
- :mod:`~newscrawl.storage.writer`: one batch, one read, one bulk write;
- :mod:`~newscrawl.storage.signals`: ``articles_stored``.
"""
