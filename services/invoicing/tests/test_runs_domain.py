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
