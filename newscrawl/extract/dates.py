"""Dates as finews writes them, read as Asia/Shanghai and returned as aware UTC.

The page stamp ``(GMT+8, Asia/Shanghai, CST) 2022-02-18 10:01:44``, the ISO
form of ``article:published_time`` / JSON-LD (``2022-02-18T10:01:44+08:00``),
the share JSON's ``showtime`` (a local date-time string, or epoch seconds or
milliseconds) and the date carried by an article id (``NW20220218…``). Every
function returns ``None`` for anything it cannot read, never raises.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from newscrawl.sites.finews import SITE_TIMEZONE

SITE_TZ = ZoneInfo(SITE_TIMEZONE)

#: a date and optional time, with an optional offset; separators - / . and 年月日
_DATETIME_RE = re.compile(
    r"(?<!\d)(?P<y>\d{4})[-/.年](?P<mo>\d{1,2})[-/.月](?P<d>\d{1,2})日?"
    r"(?:[T\s]+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,6})\d*)?)?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?"
)
#: the date an article id starts with (after an optional NW)
_ID_DATE_RE = re.compile(r"^(?:NW)?(?P<y>\d{4})(?P<mo>\d{2})(?P<d>\d{2})")
#: years a news date can have; anything else is junk, not a date
YEARS = range(1970, 2101)
#: epoch values above this are milliseconds
_EPOCH_MS_FROM = 10**11


def _offset(text: str) -> timezone | None:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:])
    if minutes >= 24 * 60:
        return None
    return timezone(sign * timedelta(minutes=minutes))


def parse_datetime(text: str) -> datetime | None:
    """The first date-time in ``text``; an explicit offset is honoured,
    otherwise the time is Asia/Shanghai; a bare date is its local midnight.

    >>> parse_datetime("(GMT+8, Asia/Shanghai, CST) 2022-02-18 10:01:44")
    datetime.datetime(2022, 2, 18, 2, 1, 44, tzinfo=datetime.timezone.utc)
    >>> parse_datetime("2022-02-18T10:01:44+08:00").isoformat()
    '2022-02-18T02:01:44+00:00'
    >>> parse_datetime("2021-12-08 15:46:00 +0800").isoformat()
    '2021-12-08T07:46:00+00:00'
    >>> parse_datetime("2022/5/26 9:30").isoformat()
    '2022-05-26T01:30:00+00:00'
    >>> parse_datetime("2022-05-26").isoformat()
    '2022-05-25T16:00:00+00:00'
    >>> parse_datetime("2022-02-30 10:00:00") is None, parse_datetime("0001-01-01") is None
    (True, True)
    >>> parse_datetime("(GMT+8, Asia/Shanghai, CST) ") is None
    True
    """
    match = _DATETIME_RE.search(text)
    if match is None:
        return None
    part = match.groupdict()
    if int(part["y"]) not in YEARS:
        return None
    try:
        tz = _offset(part["tz"]) if part["tz"] else SITE_TZ
        if tz is None:
            return None
        local = datetime(
            int(part["y"]),
            int(part["mo"]),
            int(part["d"]),
            int(part["h"] or 0),
            int(part["mi"] or 0),
            int(part["s"] or 0),
            int((part["f"] or "0").ljust(6, "0")),
            tzinfo=tz,
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def parse_showtime(value: object) -> datetime | None:
    """The share JSON's ``showtime``: a local date-time string, or epoch
    seconds / milliseconds; anything else is ``None``.

    >>> parse_showtime("2022-02-18 10:01:44").isoformat()
    '2022-02-18T02:01:44+00:00'
    >>> parse_showtime(1645149704000).isoformat()
    '2022-02-18T02:01:44+00:00'
    >>> parse_showtime(1645149704).isoformat()
    '2022-02-18T02:01:44+00:00'
    >>> [parse_showtime(x) for x in (None, True, ["2022-02-18"], -1e300, float("nan"))]
    [None, None, None, None, None]
    """
    if isinstance(value, str):
        return parse_datetime(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = value / 1000 if abs(value) >= _EPOCH_MS_FROM else value
    try:
        value = datetime.fromtimestamp(seconds, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return value if value.year in YEARS else None


def date_from_id(post_id: str) -> datetime | None:
    """Local midnight of the date an article id starts with, as UTC.

    >>> date_from_id("202205262391921712").isoformat()
    '2022-05-25T16:00:00+00:00'
    >>> date_from_id("NW202202182281010830").isoformat()
    '2022-02-17T16:00:00+00:00'
    >>> date_from_id("init"), date_from_id("NW202213992281010830"), date_from_id("000101019")
    (None, None, None)
    """
    match = _ID_DATE_RE.match(post_id)
    if match is None:
        return None
    if int(match["y"]) not in YEARS:
        return None
    try:
        local = datetime(int(match["y"]), int(match["mo"]), int(match["d"]), tzinfo=SITE_TZ)
    except ValueError:
        return None
    return local.astimezone(UTC)
