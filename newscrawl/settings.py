"""Scrapy settings for newscrawl, grouped by component. Every setting can be
overridden with ``-s NAME=VALUE`` or, for MONGO_URI, the environment."""

from __future__ import annotations

# --- project ---------------------------------------------------------------
BOT_NAME = "newscrawl"  # name in logs and stats
SPIDER_MODULES = ["newscrawl.spiders"]  # where spiders live
NEWSPIDER_MODULE = "newscrawl.spiders"  # where `scrapy genspider` puts new ones
NEWSCRAWL_CONTACT = "https://github.com/newscrawl/newscrawl"  # who to contact, in the user agent
USER_AGENT = "newscrawl/0.1 (+{contact})"  # names the project; {contact} = NEWSCRAWL_CONTACT
NEWSCRAWL_DATA_DIR = ".newscrawl"  # local state: embedded database, journals, replica builds

# --- politeness and speed --------------------------------------------------
ROBOTSTXT_OBEY = True  # honour robots.txt
ROBOTSTXT_USER_AGENT = "newscrawl"  # the name robots.txt rules address us by
CONCURRENT_REQUESTS = 32  # in flight overall: room for other hosts when one is slow
CONCURRENT_REQUESTS_PER_DOMAIN = 8  # in flight per host, at most
DOWNLOAD_DELAY = 0  # AutoThrottle sets the pace
AUTOTHROTTLE_ENABLED = True  # adapt the pace to each host's latency
AUTOTHROTTLE_START_DELAY = 0.5  # first delay per host, seconds
AUTOTHROTTLE_MAX_DELAY = 30.0  # slowest pace for a struggling host, seconds
AUTOTHROTTLE_TARGET_CONCURRENCY = 4.0  # requests in parallel per host the throttle aims at
DOWNLOAD_TIMEOUT = 30  # seconds before a request fails
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024  # bytes; a larger page (or decompressed body) is refused
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024  # bytes; a larger page is logged
COOKIES_ENABLED = False  # the site sets none
TELNETCONSOLE_ENABLED = False  # no open ports we don't need

# --- bad networks: retries with backoff ---------------------------------------
RETRY_ENABLED = True  # retry 5xx, timeouts, resets
RETRY_TIMES = 3  # extra tries per request
RETRY_BACKOFF_BASE = 1.0  # seconds before the first retry; doubles each retry (+-jitter)
RETRY_BACKOFF_MAX = 60.0  # longest wait between tries, seconds (Retry-After included)
RETRY_BACKOFF_JITTER = 0.5  # spread of each wait, as a fraction (+-50 %)
RETRY_GIVE_UP_LOG_LEVEL = "WARNING"  # giving up is expected: the run record lists the URL
REDIRECT_MAX_TIMES = 10  # longer redirect chains are refused and recorded

# --- boundaries and traps -----------------------------------------------------
DEPTH_LIMIT = 50  # bounds link traps; the site is shallow
NEWSCRAWL_TRAP_CHAIN = 4  # pages in a row without an article before links stop being followed
NEWSCRAWL_BOUNDARY_ENABLED = True  # refuse other hosts and local addresses
NEWSCRAWL_ALLOWED_ADDRESSES: list[str] = []  # local addresses allowed anyway, e.g. a proxy

# --- downloader middlewares -----------------------------------------------------
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.useragent.UserAgentMiddleware": None,
    "newscrawl.downloadermw.ContactUserAgentMiddleware": 500,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "newscrawl.downloadermw.BackoffRetryMiddleware": 550,
    "newscrawl.middlewares.EncodingMiddleware": 580,  # lying charsets, after decompression
    "newscrawl.downloadermw.RedirectGuardMiddleware": 610,  # sees redirects before Redirect
    "newscrawl.downloadermw.SiteBoundaryMiddleware": 760,  # after HttpProxy sets the proxy
}
SPIDER_MIDDLEWARES = {
    "newscrawl.middlewares.FailureErrbackMiddleware": 40,  # every failed URL is reported
}

# --- identity: one fetch per page --------------------------------------------
REQUEST_FINGERPRINTER_CLASS = "newscrawl.fingerprint.CanonicalFingerprinter"  # canonical URLs
NEWSCRAWL_SHARE_CACHE_SIZE = 10_000  # share JSON answers kept for posts in several categories
NEWSCRAWL_PARSE_PROCESSES = 1  # processes that parse pages off the crawler thread; 0: parse inline

# --- item pipelines: clean -> validate -> dedup -> store --------------------------
ITEM_PIPELINES = {
    "newscrawl.pipelines.clean.CleanPipeline": 100,
    "newscrawl.pipelines.validate.ValidatePipeline": 200,
    "newscrawl.pipelines.dedup.DedupPipeline": 300,
    "newscrawl.pipelines.mongo.MongoPipeline": 900,
}

# --- storage ---------------------------------------------------------------
MONGO_ENABLED = True  # False: articles are not stored (the store pipeline is off)
MONGO_URI = None  # mongodb://user:pass@host/?tls=true...; unset (and no env) = embedded SecantusDB
MONGO_DATABASE = "newscrawl"  # database name
MONGO_CONNECT_TIMEOUT = 10.0  # seconds to reach the server (at start: else the crawl stops)
MONGO_WRITE_CONCERN_W = None  # w: 1, 2, "majority"...; None = the server's default; 0 refused
MONGO_WRITE_CONCERN_J = None  # j: True waits for the server's journal; None = server default
MONGO_BATCH_SIZE = 100  # documents per bulk write
MONGO_FLUSH_SECONDS = 2.0  # longest a stored item waits in the buffer
MONGO_MAX_PENDING_BATCHES = 3  # batches queued before items wait (or, while failing, spill)
MONGO_WRITE_ATTEMPTS = 5  # tries per article when another writer keeps changing it
MONGO_RETRY_TIMES = 3  # extra tries of a batch after a transient error (reset, not primary)
MONGO_RETRY_BACKOFF = 0.5  # seconds before the first retry; doubles each time
MONGO_RETRY_BACKOFF_MAX = 8.0  # longest wait between retries, seconds
MONGO_RECONNECT_SECONDS = 5.0  # while MongoDB is away (journaling), how often it is pinged
MONGO_MAX_DOCUMENT_BYTES = 8 * 1024 * 1024  # larger documents are cut (truncated: true)

# --- dedup: one record per story (newscrawl/dedup) ----------------------------
NEWSCRAWL_NEARDUP_ENABLED = True  # link exact and near copies under other keys (duplicate_of)
NEWSCRAWL_NEARDUP_THRESHOLD = 0.5  # estimated Jaccard of body n-grams from which it is one story
NEWSCRAWL_NEARDUP_NGRAM = 5  # characters per n-gram (no word segmentation)
NEWSCRAWL_NEARDUP_NUM_PERM = 128  # MinHash permutations per signature
NEWSCRAWL_NEARDUP_MIN_CHARS = 100  # shorter normalised bodies (flashes) are never linked
NEWSCRAWL_NEARDUP_SNAPSHOT = True  # keep the band table in NEWSCRAWL_DATA_DIR/dedup between runs

# --- incremental crawling (newscrawl/incremental) ----------------------------
NEWSCRAWL_INCREMENTAL_ENABLED = True  # skip pages already stored; False: crawl everything again
NEWSCRAWL_RECHECK_WINDOW = "24h"  # stored articles published this recently are re-checked
NEWSCRAWL_RECHECK_AFTER = "1h"  # ... at most once per this
NEWSCRAWL_LIST_RECHECK_AFTER = "1h"  # category pages no new post links to: re-checked this often
NEWSCRAWL_STATE_HORIZON = "7d"  # how far back the stored state is loaded at start
NEWSCRAWL_NOW = None  # reference time for the window (ISO 8601); unset: now
NEWSCRAWL_CRAWL_LOCK = False  # True: the crawl holds its site's lock (cron, scrapyd); see locks.py
NEWSCRAWL_CRAWL_LOCK_TTL = "60s"  # that lock's lease, renewed every third of it
DOWNLOADER_MIDDLEWARES |= {
    "newscrawl.incremental.ConditionalRequests": 590,  # If-None-Match, 304s, gone posts
}
SPIDER_MIDDLEWARES |= {
    "newscrawl.incremental.SkipKnownPages": 960,  # no links to stored posts
}

# --- extensions ------------------------------------------------------------
EXTENSIONS = {
    "newscrawl.locks.CrawlLock": 90,  # NEWSCRAWL_CRAWL_LOCK: one crawl of a site at a time
    "newscrawl.incremental.Incremental": 100,  # loads and writes the incremental state
    "newscrawl.extensions.CrawlSummary": 500,
    "newscrawl.runs.RunRecorder": 510,  # one crawl_runs document per crawl
}
NEWSCRAWL_RUNS_ENABLED = True  # write the run record
NEWSCRAWL_RUNS_MAX_FAILED = 10_000  # failed URLs kept in one run record

# --- distributed mode: many workers, one frontier in Redis (newscrawl/distributed) ----
ADDONS = {"newscrawl.distributed.addon.Distributed": 0}  # applies the switch below
NEWSCRAWL_DISTRIBUTED = False  # True: scrapy-redis scheduler and dupefilter shared in Redis
REDIS_URL = None  # redis://host:6379/0 for distributed mode; unset = env REDIS_URL
NEWSCRAWL_DISTRIBUTED_PREFIX = "newscrawl:%(spider)s"  # Redis keys of one crawl
NEWSCRAWL_DISTRIBUTED_WORKER_TIMEOUT = 20.0  # seconds without heartbeat: worker dead, re-queue
NEWSCRAWL_DISTRIBUTED_POLL_SECONDS = 0.1  # how often in-flight work is checked
SCHEDULER_IDLE_BEFORE_CLOSE = 0  # seconds the whole crawl must stay idle before a worker closes

# --- runtime ---------------------------------------------------------------
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"  # Scrapy's default
FEED_EXPORT_ENCODING = "utf-8"  # `-o file.jsonl` keeps Chinese readable
CONCURRENT_ITEMS = 16  # a response's outputs handled at once; one asyncio task each (Scrapy: 100)
WARN_ON_GENERATOR_RETURN_VALUE = False  # Scrapy's check re-parses callback source: CPU per page
LOG_LEVEL = "INFO"  # DEBUG shows every expected drop
