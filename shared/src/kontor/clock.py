"""Injected time: every rule that depends on "today" asks a Clock, never the system directly.

Business dates are in Europe/Berlin; timestamps are stored in UTC.
"""
from __future__ import annotations

import calendar
import datetime as dt
from typing import Protocol
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")


def check_run_date(as_of: dt.date, *, today: dt.date, allow_future: bool) -> dt.date:
    """A run "as of" a date judges what is due by then; one as of a later date than today would act
    on what is not yet true (numbers, reminders, expired offers, debt). Refused unless the deployment
    allows it (a demo or a test playing a year through)."""
    from kontor.errors import InvalidInput

    if as_of > today and not allow_future:
        raise InvalidInput(field="as_of", message=f"must not be after today ({today.isoformat()}): this "
                                                  f"deployment does not allow runs as of a later date")
    return as_of


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant, timezone-aware in UTC."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock:
    """A clock that stands still until moved; for tests and "as of" runs."""

    def __init__(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at.astimezone(dt.UTC)

    def now(self) -> dt.datetime:
        return self._at

    def advance(self, delta: dt.timedelta) -> None:
        self._at += delta


def business_today(clock: Clock) -> dt.date:
    """Today's date in Europe/Berlin, the calendar all business rules use."""
    return clock.now().astimezone(BERLIN).date()


def end_of_business_day(day: dt.date) -> dt.datetime:
    """The last instant of a Berlin calendar day, in UTC (e.g. for "valid until" dates)."""
    start_next = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=BERLIN)
    return (start_next - dt.timedelta(microseconds=1)).astimezone(dt.UTC)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, clamped to the end of a shorter month (31 Dec + 2 → 28/29 Feb)."""
    years, month0 = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month0 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
