"""The Redis connection of distributed mode.

Settings: ``NEWSCRAWL_DISTRIBUTED_PREFIX`` (``newscrawl:%(spider)s``: the
crawl's key prefix), ``REDIS_URL`` (else the environment variable ``REDIS_URL``; no
default: distributed mode without a Redis is a configuration error, not a
silent fallback to localhost) and ``REDIS_PARAMS`` (extra client arguments,
over scrapy-redis' defaults; ``socket_connect_timeout`` defaults to 10 s here).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, cast

import redis
from scrapy.settings import BaseSettings
from scrapy_redis import defaults
from scrapy_redis.connection import get_redis

from newscrawl.storage.client import redact_uri

CONNECT_TIMEOUT = 10.0
DEFAULT_PREFIX = "newscrawl:%(spider)s"


class RedisUnavailable(RuntimeError):
    """Distributed mode cannot use Redis (no URL, or no answer)."""


def _settings(settings: Mapping[str, Any]) -> BaseSettings:
    return settings if isinstance(settings, BaseSettings) else BaseSettings(dict(settings))


def resolve_redis_url(settings: Mapping[str, Any]) -> str | None:
    """``REDIS_URL`` from the settings, else from the environment, else None.

    >>> resolve_redis_url({"REDIS_URL": "redis://cache:6379/2"})
    'redis://cache:6379/2'
    """
    value = _settings(settings).get("REDIS_URL")
    if value:
        return str(value)
    return os.environ.get("REDIS_URL") or None


def key_prefix(settings: Mapping[str, Any], spider_name: str) -> str:
    """The crawl's Redis key prefix: ``NEWSCRAWL_DISTRIBUTED_PREFIX`` % spider
    (workers with the same prefix crawl together).

    >>> key_prefix({}, "finews")
    'newscrawl:finews'
    >>> key_prefix({"NEWSCRAWL_DISTRIBUTED_PREFIX": "nightly:%(spider)s"}, "finews")
    'nightly:finews'
    """
    template = _settings(settings).get("NEWSCRAWL_DISTRIBUTED_PREFIX") or DEFAULT_PREFIX
    return str(template) % {"spider": spider_name}


def redis_from_settings(settings: Mapping[str, Any]) -> redis.Redis:
    """A client (bytes replies) for ``REDIS_URL``; raises RedisUnavailable
    when no URL is configured. Does not connect yet."""
    values = _settings(settings)
    url = resolve_redis_url(values)
    if not url:
        raise RedisUnavailable(
            "distributed mode needs a Redis: set REDIS_URL (setting, --redis-url, or environment)"
        )
    params: dict[str, Any] = dict(defaults.REDIS_PARAMS)
    params["socket_connect_timeout"] = CONNECT_TIMEOUT
    params.update(values.getdict("REDIS_PARAMS"))
    params["url"] = url
    return cast(redis.Redis, get_redis(**params))


def connect(settings: Mapping[str, Any]) -> redis.Redis:
    """:func:`redis_from_settings`, checked with PING; RedisUnavailable names
    the (password-redacted) URL and the cause."""
    server = redis_from_settings(settings)
    url = resolve_redis_url(settings) or ""
    try:
        server.ping()
    except redis.RedisError as exc:
        server.close()
        raise RedisUnavailable(f"cannot reach Redis at {redact_uri(url)}: {exc}") from exc
    return server


def redis_problem(overrides: Mapping[str, Any]) -> str | None:
    """Why distributed mode cannot start with these setting overrides (over the
    project's settings), or None when Redis answers. For the CLI, which then
    exits with that one line instead of a traceback."""
    from newscrawl.runner import project_settings

    try:
        connect(project_settings(dict(overrides))).close()
    except RedisUnavailable as exc:
        return str(exc)
    return None
