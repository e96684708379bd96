"""Dates: page stamp, ISO, share showtime, id date; all aware UTC, never raising."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newscrawl.extract.dates import date_from_id, parse_datetime, parse_showtime


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(GMT+8, Asia/Shanghai, CST) 2022-02-18 10:01:44", datetime(2022, 2, 18, 2, 1, 44)),
        ("2022-02-18T10:01:44+08:00", datetime(2022, 2, 18, 2, 1, 44)),
        ("2022-02-18T02:01:44Z", datetime(2022, 2, 18, 2, 1, 44)),
        ("2022-02-18T02:01:44.123456+00:00", datetime(2022, 2, 18, 2, 1, 44, 123456)),
        ("2021-12-08 15:46:00 +0800", datetime(2021, 12, 8, 7, 46)),
        ("2021-12-01 13:33:50", datetime(2021, 12, 1, 5, 33, 50)),
        ("2022/5/26 9:30", datetime(2022, 5, 26, 1, 30)),
        ("2022年5月26日 09:30", datetime(2022, 5, 26, 1, 30)),
        ("2022-05-26", datetime(2022, 5, 25, 16, 0)),
        ("2022-01-01 03:00:00", datetime(2021, 12, 31, 19, 0)),
    ],
)
def test_parse_datetime(text: str, expected: datetime) -> None:
    value = parse_datetime(text)
    assert value == expected.replace(tzinfo=UTC)
    assert (
        value is not None
        and value.utcoffset() is not None
        and value.utcoffset().total_seconds() == 0
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "(GMT+8, Asia/Shanghai, CST) ",
        " +0800",
        "2022-13-01 10:00",
        "2022-02-30",
        "9999999-1-1",
        "2022-02-18 25:61:00",
        "2022-02-18T10:00:00+99:00",
    ],
)
def test_unreadable_dates(text: str) -> None:
    assert parse_datetime(text) is None


def test_showtime() -> None:
    assert parse_showtime("2022-02-18 10:01:44") == datetime(2022, 2, 18, 2, 1, 44, tzinfo=UTC)
    assert parse_showtime(1645149704) == datetime(2022, 2, 18, 2, 1, 44, tzinfo=UTC)
    assert parse_showtime(1645149704000) == datetime(2022, 2, 18, 2, 1, 44, tzinfo=UTC)
    for odd in (None, "", True, [], {}, float("inf"), float("nan"), 10**30, "tomorrow"):
        assert parse_showtime(odd) is None


def test_id_dates() -> None:
    assert date_from_id("202205262391921712") == datetime(2022, 5, 25, 16, tzinfo=UTC)
    assert date_from_id("NW202202182281010830") == datetime(2022, 2, 17, 16, tzinfo=UTC)
    assert date_from_id("init") is None
    assert date_from_id("NW2022") is None
    assert date_from_id("202202302281010830") is None
    assert date_from_id("000101012281010830") is None
