"""Distributed mode: many crawler processes, on many machines, one crawl.

``newscrawl crawl finews --distributed --redis-url URL`` (or the settings
``NEWSCRAWL_DISTRIBUTED`` and ``REDIS_URL``) makes a crawl one *worker* of
many. The workers share:

- in **Redis** (scrapy-redis): the frontier (a priority queue), the request
  dupefilter (our canonical fingerprints), each worker's in-flight requests
  and heartbeat, the share-JSON answers and the posts waiting for them, the
  crawl's run id;
- in **MongoDB**: articles, the near-duplicate index, run records, locks.

Modules:

- :mod:`~newscrawl.distributed.addon`: the settings switch (a Scrapy add-on);
- :mod:`~newscrawl.distributed.scheduler`: ``DistributedScheduler`` (scrapy-redis'
  scheduler with a reliable queue, seeding once, idle close);
- :mod:`~newscrawl.distributed.frontier`: the Redis side, atomic Lua scripts;
- :mod:`~newscrawl.distributed.tracker`: when a popped request is finished for good;
- :mod:`~newscrawl.distributed.dupefilter`: ``CanonicalRedisDupeFilter``;
- :mod:`~newscrawl.distributed.shares`: the spider's share-JSON bookkeeping in Redis;
- :mod:`~newscrawl.distributed.engine`: the two engine internals the scheduler needs;
- :mod:`~newscrawl.distributed.connection`: the Redis client from the settings;
- :mod:`~newscrawl.distributed.redis_server`: a throw-away ``redis-server`` (tests, bench);
- :mod:`~newscrawl.distributed.workers`: ``run_workers``, N workers on one replica
  (the benchmark hook; also ``python -m newscrawl.distributed bench``).
"""
