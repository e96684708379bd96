"""What an incremental crawl fetches again: pure rules, no Scrapy, no database.

A *post* page already stored is skipped, except when its article was published
within the re-check window and was last checked long enough ago (then it is
fetched again, conditionally). A *list* page (home, feed, category) is how new
posts are found: home and feed are fetched on every run, a category page when
a new post links to it or when its last check is old enough.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: what to do with a link to a post page
FETCH = "fetch"
RECHECK = "recheck"
SKIP = "skip"

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str | float | int | timedelta) -> timedelta:
    """A duration from a setting or an option: seconds as a number, or a
    number with a unit (``s``, ``m``, ``h``, ``d``, ``w``).

    >>> parse_duration("10m"), parse_duration("24h"), parse_duration(90), parse_duration("1.5s")
    (datetime.timedelta(seconds=600), datetime.timedelta(days=1), datetime.timedelta(seconds=90), datetime.timedelta(seconds=1, microseconds=500000))
    >>> parse_duration("0")
    datetime.timedelta(0)
    >>> parse_duration("ten minutes")
    Traceback (most recent call last):
    ...
    ValueError: not a duration: 'ten minutes' (use e.g. 90, 30s, 10m, 24h, 7d)
    """  # noqa: E501
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return timedelta(seconds=float(value))
    match = _DURATION_RE.match(str(value).lower())
    if match is None:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90, 30s, 10m, 24h, 7d)")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def parse_now(value: str | datetime | None) -> datetime | None:
    """The reference time ``NEWSCRAWL_NOW`` (ISO 8601; naive means UTC), or None.

    >>> parse_now("2022-05-27T12:00:00+08:00")
    datetime.datetime(2022, 5, 27, 4, 0, tzinfo=datetime.timezone.utc)
    >>> parse_now("2022-05-27 04:00"), parse_now(""), parse_now(None)
    (datetime.datetime(2022, 5, 27, 4, 0, tzinfo=datetime.timezone.utc), None, None)
    """
    if value is None or value == "":
        return None
    stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).strip())
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def aware(value: datetime | None) -> datetime | None:
    """An aware UTC datetime (naive values are taken as UTC).

    >>> aware(datetime(2024, 1, 1)).tzinfo
    datetime.timezone.utc
    """
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class Known:
    """A post page whose article is stored (or definitively dropped)."""

    article_id: str | None
    published_at: datetime | None
    checked_at: datetime | None
    gone: bool = False

    def merged(self, other: Known) -> Known:
        """Two sources about one page: the newest check, any id, date and gone mark.

        >>> t0, t1 = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
        >>> Known("a", None, t0).merged(Known(None, t1, t1, gone=True))
        Known(article_id='a', published_at=datetime.datetime(2024, 1, 2, 0, 0, tzinfo=datetime.timezone.utc), checked_at=datetime.datetime(2024, 1, 2, 0, 0, tzinfo=datetime.timezone.utc), gone=True)
        """  # noqa: E501
        checks = [c for c in (self.checked_at, other.checked_at) if c is not None]
        return Known(
            article_id=self.article_id or other.article_id,
            published_at=self.published_at or other.published_at,
            checked_at=max(checks) if checks else None,
            gone=self.gone or other.gone,
        )


def decide_post(
    known: Known | None,
    *,
    reference_now: datetime,
    wall_now: datetime,
    window: timedelta,
    recheck_after: timedelta,
) -> str:
    """:data:`FETCH` a post never stored, :data:`RECHECK` a stored one published
    within ``window`` of ``reference_now`` and last checked at least
    ``recheck_after`` before ``wall_now``, else :data:`SKIP` (older, gone, or
    checked recently). Two clocks: the site's (publication) and ours (checks).

    >>> now = datetime(2022, 5, 27, 4, tzinfo=UTC)
    >>> kw = dict(reference_now=now, wall_now=now, window=timedelta(hours=24),
    ...           recheck_after=timedelta(hours=1))
    >>> decide_post(None, **kw)
    'fetch'
    >>> fresh = Known("k", now - timedelta(hours=2), now - timedelta(hours=3))
    >>> decide_post(fresh, **kw)
    'recheck'
    >>> decide_post(Known("k", now - timedelta(hours=2), now - timedelta(minutes=5)), **kw)
    'skip'
    >>> decide_post(Known("k", now - timedelta(days=2), now - timedelta(days=1)), **kw)
    'skip'
    >>> decide_post(Known("k", now - timedelta(hours=2), None, gone=True), **kw)
    'skip'
    """
    if known is None:
        return FETCH
    if known.gone or known.published_at is None:
        return SKIP
    if known.published_at < reference_now - window:
        return SKIP
    if known.checked_at is not None and known.checked_at > wall_now - recheck_after:
        return SKIP
    return RECHECK


def list_due(checked_at: datetime | None, *, wall_now: datetime, recheck_after: timedelta) -> bool:
    """Whether a category page not linked from a new post is fetched again.

    >>> now = datetime(2024, 1, 1, 12, tzinfo=UTC)
    >>> list_due(None, wall_now=now, recheck_after=timedelta(hours=1))
    True
    >>> list_due(now - timedelta(minutes=5), wall_now=now, recheck_after=timedelta(hours=1))
    False
    >>> list_due(now - timedelta(hours=2), wall_now=now, recheck_after=timedelta(hours=1))
    True
    """
    return checked_at is None or checked_at <= wall_now - recheck_after


@dataclass(frozen=True)
class Validators:
    """What the server said identifies the version of a page."""

    url: str  # the exact URL the validators came from
    etag: str | None = None
    last_modified: str | None = None

    def __bool__(self) -> bool:
        return bool(self.etag or self.last_modified)


def validators_from_headers(url: str, headers: Mapping[str, str | None]) -> Validators:
    """The ``ETag`` and ``Last-Modified`` of a response (header names any case).

    >>> date = "Fri, 27 May 2022 04:00:00 GMT"
    >>> validators_from_headers("u", {"ETag": '"abc"', "last-modified": date})
    Validators(url='u', etag='"abc"', last_modified='Fri, 27 May 2022 04:00:00 GMT')
    >>> bool(validators_from_headers("u", {"Content-Type": "text/html"}))
    False
    >>> validators_from_headers("u", {"Last-Modified": "yesterday"}).last_modified is None
    True
    """
    lower = {name.lower(): value for name, value in headers.items()}
    return Validators(url=url, etag=lower.get("etag") or None, last_modified=_http_date(lower))


#: the date format HTTP servers send (RFC 9110 IMF-fixdate): taken as it is
_IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (0[1-9]|[12]\d|3[01]) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d GMT"
)


def _http_date(lower: Mapping[str, str | None]) -> str | None:
    """The ``Last-Modified`` date when it can be read (the usual format is
    recognised without parsing it: this runs for every response).

    >>> _http_date({"last-modified": "Fri, 27 May 2022 04:00:00 GMT"})
    'Fri, 27 May 2022 04:00:00 GMT'
    >>> _http_date({"last-modified": "Friday, 27-May-22 04:00:00 GMT"})  # obsolete, still read
    'Friday, 27-May-22 04:00:00 GMT'
    >>> _http_date({"last-modified": "Fri, 27 May 2022 25:00:00 GMT"}) is None
    True
    """
    value = lower.get("last-modified")
    if not value:
        return None
    if _IMF_FIXDATE.fullmatch(value):
        return value
    try:
        email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # a date we cannot read would not be understood either
    return value


def conditional_headers(validators: Validators | None, url: str) -> dict[str, str]:
    """``If-None-Match`` / ``If-Modified-Since`` for a request of ``url``.

    An ETag identifies the bytes, so it is sent whatever form of the URL asks;
    a date is sent only for the very URL it came from (the folder form of a
    category page is another file, with its own date).

    >>> v = Validators("https://h/a", '"e1"', "Fri, 27 May 2022 04:00:00 GMT")
    >>> conditional_headers(v, "https://h/a")
    {'If-None-Match': '"e1"', 'If-Modified-Since': 'Fri, 27 May 2022 04:00:00 GMT'}
    >>> conditional_headers(v, "http://h/a/")
    {'If-None-Match': '"e1"'}
    >>> conditional_headers(None, "https://h/a")
    {}
    """
    if validators is None:
        return {}
    headers: dict[str, str] = {}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified and validators.url == url:
        headers["If-Modified-Since"] = validators.last_modified
    return headers
