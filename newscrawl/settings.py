"""Scrapy settings for newscrawl, grouped by component. Every setting can be
overridden with ``-s NAME=VALUE`` or, for MONGO_URI, the environment."""

from __future__ import annotations

# --- project ---------------------------------------------------------------
BOT_NAME = "newscrawl"  # name in logs and stats
SPIDER_MODULES = ["newscrawl.spiders"]  # where spiders live
NEWSPIDER_MODULE = "newscrawl.spiders"  # where `scrapy genspider` puts new ones
NEWSCRAWL_CONTACT = "https://github.com/newscrawl/newscrawl"  # who to contact, in the user agent
USER_AGENT = f"newscrawl/0.1 (+{NEWSCRAWL_CONTACT})"  # names the project and a contact
NEWSCRAWL_DATA_DIR = ".newscrawl"  # local state: embedded database, journals, replica builds

# --- politeness and speed --------------------------------------------------
ROBOTSTXT_OBEY = True  # honour robots.txt
CONCURRENT_REQUESTS = 32  # in flight overall
CONCURRENT_REQUESTS_PER_DOMAIN = 16  # in flight per host
DOWNLOAD_DELAY = 0  # AutoThrottle sets the pace
AUTOTHROTTLE_ENABLED = True  # adapt the pace to the server's latency
AUTOTHROTTLE_START_DELAY = 0.0  # first delay, seconds
AUTOTHROTTLE_TARGET_CONCURRENCY = 8.0  # requests in parallel per host the throttle aims at
DOWNLOAD_TIMEOUT = 30  # seconds before a request fails
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024  # bytes; a larger page is refused
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024  # bytes; a larger page is logged
RETRY_ENABLED = True  # retry 5xx, timeouts, resets
RETRY_TIMES = 3  # extra tries per request
DEPTH_LIMIT = 50  # bounds link traps; the site is shallow
COOKIES_ENABLED = False  # the site sets none
TELNETCONSOLE_ENABLED = False  # no open ports we don't need

# --- identity: one fetch per page --------------------------------------------
REQUEST_FINGERPRINTER_CLASS = "newscrawl.fingerprint.CanonicalFingerprinter"  # canonical URLs
NEWSCRAWL_SHARE_CACHE_SIZE = 10_000  # share JSON answers kept for posts in several categories

# --- item pipelines: clean -> validate -> dedup -> store --------------------------
ITEM_PIPELINES = {
    "newscrawl.pipelines.clean.CleanPipeline": 100,
    "newscrawl.pipelines.validate.ValidatePipeline": 200,
    "newscrawl.pipelines.dedup.DedupPipeline": 300,
    "newscrawl.pipelines.mongo.MongoPipeline": 900,
}

# --- storage ---------------------------------------------------------------
MONGO_URI = None  # mongodb://...; unset (and no env MONGO_URI) = the embedded SecantusDB server
MONGO_DATABASE = "newscrawl"  # database name
MONGO_BATCH_SIZE = 100  # documents per bulk write
MONGO_FLUSH_SECONDS = 2.0  # longest a stored item waits in the buffer

# --- dedup: one record per story (newscrawl/dedup) ----------------------------
NEWSCRAWL_NEARDUP_ENABLED = True  # link exact and near copies under other keys (duplicate_of)
NEWSCRAWL_NEARDUP_THRESHOLD = 0.5  # estimated Jaccard of body n-grams from which it is one story
NEWSCRAWL_NEARDUP_NGRAM = 5  # characters per n-gram (no word segmentation)
NEWSCRAWL_NEARDUP_NUM_PERM = 128  # MinHash permutations per signature
NEWSCRAWL_NEARDUP_MIN_CHARS = 100  # shorter normalised bodies (flashes) are never linked

# --- extensions ------------------------------------------------------------
EXTENSIONS = {
    "newscrawl.extensions.CrawlSummary": 500,
}

# --- runtime ---------------------------------------------------------------
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"  # Scrapy's default
FEED_EXPORT_ENCODING = "utf-8"  # `-o file.jsonl` keeps Chinese readable
LOG_LEVEL = "INFO"  # DEBUG shows every expected drop
