"""Billing runs: a job that, as of a date, drafts the planned invoices due within the lead
days, issues the drafts due, and sends the reminders due, in that order. No I/O.

Every worker works on the oldest active run; the work items themselves (planned invoices,
drafts, invoices) are shared with SKIP LOCKED, so a phase is done only when nothing of it is
left as committed, whoever is still working on it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from kontor.clock import check_run_date
from kontor_invoicing.domain.model import business_date

PHASES = ("drafting", "issuing", "reminding", "done")
ACTIVE = ("queued", "running")
STATUSES = ("queued", "running", "finished", "failed")


@dataclass(frozen=True)
class Remaining:
    """What is left of a run, as committed now."""

    to_draft: int = 0  # planned invoices due within the lead days
    to_queue: int = 0  # drafts whose invoice date has come
    to_issue: int = 0  # invoices of this run still being checked, numbered or rendered
    stuck: int = 0  # invoices of this run whose check or rendering failed every attempt so far
    to_remind: int = 0  # reminders due


def check_as_of(as_of: dt.date, *, today: dt.date, allow_future: bool) -> dt.date:
    """A run's date: a business date, and not later than today unless the deployment allows it
    (a demo or a test playing a year through). A run as of a future date would take that
    year's invoice numbers, issue invoices dated in the future and send reminders not yet due."""
    business_date(as_of, "as_of")
    return check_run_date(as_of, today=today, allow_future=allow_future)


def phase_done(phase: str, left: Remaining) -> bool:
    if phase == "drafting":
        return left.to_draft == 0
    if phase == "issuing":
        return left.to_queue == 0 and left.to_issue == 0
    if phase == "reminding":
        return left.to_remind == 0
    return True


def next_phase(phase: str) -> str:
    return PHASES[min(PHASES.index(phase) + 1, len(PHASES) - 1)]


def outcome(left: Remaining) -> str:
    """A run is `failed` when invoices it queued could not be issued (they are retried and
    issued by later runs once the cause is fixed), else `finished`."""
    return "failed" if left.stuck else "finished"


def rate(issued: int, started_at: dt.datetime | None, finished_at: dt.datetime | None,
         now: dt.datetime) -> float | None:
    """Invoices issued per second since the run started."""
    if started_at is None:
        return None
    seconds = ((finished_at or now) - started_at).total_seconds()
    return round(issued / seconds, 2) if seconds > 0 else None
