"""Billing runs alone: when a phase is done, the order of phases, the outcome, the rate."""
import datetime as dt

import pytest

from kontor_invoicing.domain import runs

pytestmark = pytest.mark.unit


def test_a_phase_is_done_when_nothing_of_it_is_left():
    assert not runs.phase_done("drafting", runs.Remaining(to_draft=1))
    assert runs.phase_done("drafting", runs.Remaining(to_queue=5, to_remind=3))
    assert not runs.phase_done("issuing", runs.Remaining(to_issue=1))
    assert not runs.phase_done("issuing", runs.Remaining(to_queue=1))
    assert runs.phase_done("issuing", runs.Remaining(stuck=2)), "a run does not wait for invoices that keep failing"
    assert not runs.phase_done("reminding", runs.Remaining(to_remind=1))
    assert [runs.next_phase(p) for p in runs.PHASES] == ["issuing", "reminding", "done", "done"]


def test_outcome_and_rate():
    assert runs.outcome(runs.Remaining()) == "finished"
    assert runs.outcome(runs.Remaining(stuck=1)) == "failed"
    start = dt.datetime(2027, 1, 1, 9, tzinfo=dt.UTC)
    assert runs.rate(100, start, start + dt.timedelta(seconds=8), start) == 12.5
    assert runs.rate(10, start, None, start + dt.timedelta(seconds=4)) == 2.5
    assert runs.rate(10, None, None, start) is None


def test_a_run_is_as_of_a_business_date_not_after_today_unless_allowed():
    from kontor.errors import InvalidInput

    today = dt.date(2026, 12, 1)
    assert runs.check_as_of(today, today=today, allow_future=False) == today
    assert runs.check_as_of(dt.date(2026, 1, 1), today=today, allow_future=False) == dt.date(2026, 1, 1)
    assert runs.check_as_of(dt.date(2027, 12, 31), today=today, allow_future=True) == dt.date(2027, 12, 31)
    for as_of, allow in ((dt.date(2026, 12, 2), False), (dt.date(9999, 12, 31), True), (dt.date(1, 1, 1), True),
                         (dt.date(1999, 12, 31), False)):
        with pytest.raises(InvalidInput) as e:
            runs.check_as_of(as_of, today=today, allow_future=allow)
        assert e.value.errors[0][0] == "as_of", as_of
