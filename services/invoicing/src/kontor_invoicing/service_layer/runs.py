"""Billing runs as jobs: started by an advisor (API or CLI) or by the worker's schedule,
worked on by every invoicing worker, followed through their progress.

A run is a row (`queued` → `running` → `finished` | `failed`) with a phase (drafting →
issuing → reminding → done). Every worker takes the oldest active run and does its share of
the current phase; the phase advances when nothing of it is left as committed, whoever did it.
What each worker did is counted in the transaction that did it, so the counts are exact even
when a worker dies; a run interrupted by a crash is finished by the workers that remain or
restart. Issuing itself runs in every worker's `IssuingPipeline`, for the runs' invoices and
for those issued one at a time.
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kontor import metrics
from kontor.auth import Principal
from kontor.logging import get_logger
from kontor_invoicing.adapters import repository
from kontor_invoicing.domain import model, runs
from kontor_invoicing.service_layer import services
from kontor_invoicing.service_layer.services import Deps

log = get_logger(__name__)


@dataclass(frozen=True)
class RunView:
    run_id: uuid.UUID
    as_of: dt.date
    status: str
    phase: str
    requested_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    drafted: int
    queued: int
    issued: int
    held: int
    reminded: int
    workers: int
    remaining: dict | None  # while active: what is left (runs.Remaining)
    invoices_per_s: float | None
    elapsed_s: float | None
    errors: list


async def _remaining(session: AsyncSession, deps: Deps, run: dict) -> runs.Remaining:
    s = deps.settings
    return runs.Remaining(**await repository.run_remaining(
        session, run_id=run["id"], as_of=run["as_of"], draft_until=model.days_after(run["as_of"], s.draft_lead_days),
        schedule=tuple(sorted(s.reminder_days)), max_render_attempts=s.max_render_attempts))


async def _views(session: AsyncSession, deps: Deps, rows: list[dict]) -> list[RunView]:
    progress = await repository.run_progress(session, [r["id"] for r in rows])
    now = deps.clock.now()
    views = []
    for r in rows:
        done = progress.get(r["id"], {})
        active = r["status"] in runs.ACTIVE
        left = asdict(await _remaining(session, deps, r)) if active else None
        end = r["finished_at"] or now
        views.append(RunView(
            run_id=r["id"], as_of=r["as_of"], status=r["status"], phase=r["phase"], requested_by=r["requested_by"],
            created_at=r["created_at"], started_at=r["started_at"], finished_at=r["finished_at"],
            **{k: done.get(k, 0) for k in repository.PROGRESS}, workers=done.get("workers", 0), remaining=left,
            invoices_per_s=runs.rate(done.get("issued", 0), r["started_at"], r["finished_at"], now),
            elapsed_s=round((end - r["started_at"]).total_seconds(), 2) if r["started_at"] else None,
            errors=list(r["errors"])))
    return views


async def start_run(session: AsyncSession, deps: Deps, *, as_of: dt.date, requested_by: str) -> tuple[RunView, bool]:
    """A queued run as of `as_of`, or (False) the one of that date that is queued or running.
    `as_of` later than today is refused unless the deployment allows it (the API, the command
    and the schedule alike)."""
    runs.check_as_of(as_of, today=deps.today, allow_future=deps.settings.allow_future_as_of)
    row, created = await repository.create_run(session, {
        "id": uuid.uuid4(), "as_of": as_of, "status": "queued", "phase": runs.PHASES[0],
        "requested_by": requested_by, "created_at": deps.clock.now()})
    if created:
        log.info("billing run queued", run_id=str(row["id"]), as_of=as_of.isoformat(), requested_by=requested_by)
    return (await _views(session, deps, [row]))[0], created


async def request_run(session: AsyncSession, deps: Deps, principal: Principal, *,
                      as_of: dt.date | None) -> tuple[RunView, bool]:
    principal.require_advisor("start billing runs")
    return await start_run(session, deps, as_of=as_of or deps.today, requested_by=principal.sub)


async def get_run(session: AsyncSession, deps: Deps, run_id: uuid.UUID) -> RunView:
    return (await _views(session, deps, [await repository.get_run(session, run_id)]))[0]


async def list_runs(session: AsyncSession, deps: Deps, *, limit: int, offset: int) -> list[RunView]:
    return await _views(session, deps, await repository.list_runs(session, limit=limit, offset=offset))


async def work(session_factory: async_sessionmaker[AsyncSession], deps: Deps, *, worker: str) -> bool:
    """This worker's share of the oldest active run's current phase, then the phase advanced if
    nothing of it is left. False when there is no run, or nothing this worker can do now (the
    phase waits for the issuing pipelines)."""
    async with session_factory() as session:
        active = await repository.active_runs(session)
    if not active:
        return False
    run = active[0]
    run_id, as_of, phase = run["id"], run["as_of"], run["phase"]
    if run["status"] == "queued":
        async with session_factory.begin() as session:
            locked = await repository.get_run(session, run_id, for_update=True)
            if locked["status"] == "queued":
                await repository.update_run(session, run_id, status="running", started_at=deps.clock.now())
                log.info("billing run started", run_id=str(run_id), as_of=as_of.isoformat(), worker=worker)
    did = 0
    try:
        if phase == "drafting":
            did = await services.create_due_drafts(session_factory, deps, as_of=as_of, run_id=run_id, worker=worker)
        elif phase == "issuing":
            did = await services.queue_due_drafts(session_factory, deps, as_of=as_of, run_id=run_id, worker=worker)
        elif phase == "reminding":
            did = await services.send_reminders(session_factory, deps, as_of=as_of, run_id=run_id, worker=worker)
    except Exception as e:
        async with session_factory.begin() as session:
            await repository.add_run_error(session, run_id, {"phase": phase, "worker": worker,
                                                             "error": f"{type(e).__name__}: {e}"[:500],
                                                             "at": deps.clock.now().isoformat()})
        raise
    return await _advance(session_factory, deps, run_id, phase) or did > 0


async def _advance(session_factory: async_sessionmaker[AsyncSession], deps: Deps, run_id: uuid.UUID,
                   phase: str) -> bool:
    async with session_factory.begin() as session:
        run = await repository.get_run(session, run_id, for_update=True)  # one worker advances a phase
        if run["phase"] != phase or run["status"] not in runs.ACTIVE:
            return True
        left = await _remaining(session, deps, run)
        if not runs.phase_done(phase, left):
            return False
        after = runs.next_phase(phase)
        if after == "done":
            status = runs.outcome(left)
            finished_at = deps.clock.now()
            await repository.update_run(session, run_id, phase=after, status=status, finished_at=finished_at)
            done = (await repository.run_progress(session, [run_id])).get(run_id, {})
            log.info("billing run ended", run_id=str(run_id), status=status, as_of=run["as_of"].isoformat(),
                     stuck=left.stuck, **{k: done.get(k, 0) for k in repository.PROGRESS})
            ended = (status, (finished_at - run["started_at"]).total_seconds() if run["started_at"] else None)
        else:
            await repository.update_run(session, run_id, phase=after)
            log.info("billing run phase", run_id=str(run_id), phase=after)
            ended = None
    if ended is not None:  # counted once committed
        metrics.BILLING_RUNS_ENDED.labels(ended[0]).inc()
        if ended[1] is not None:
            metrics.BILLING_RUN_SECONDS.observe(max(0.0, ended[1]))
    return True


async def refresh_gauges(session_factory: async_sessionmaker[AsyncSession], deps: Deps,
                         gauges: metrics.BillingRunGauges) -> None:
    """The billing-run gauges from the database as it is now: runs active, the newest run's
    counts (what is left only while it is active)."""
    async with session_factory() as session:
        active = await repository.active_runs(session)
        newest = await list_runs(session, deps, limit=1, offset=0)
    gauges.active.set(len(active))
    counts: dict[str, int] = {}
    if newest:
        counts = {**(newest[0].remaining or {}), **{k: getattr(newest[0], k) for k in repository.PROGRESS}}
    for state in gauges.STATES:
        gauges.invoices.labels(state).set(counts.get(state, 0))
    running = next((r for r in active if r["status"] == "running" and r["started_at"]), None)
    gauges.running_seconds.set(max(0.0, (deps.clock.now() - running["started_at"]).total_seconds()) if running else 0)


async def schedule_today(session_factory: async_sessionmaker[AsyncSession], deps: Deps) -> RunView | None:
    """The worker's schedule: a run as of today when something is due and none is active."""
    today = deps.today
    async with session_factory.begin() as session:
        probe = {"id": uuid.uuid4(), "as_of": today}
        left = await _remaining(session, deps, probe)
        if not (left.to_draft or left.to_queue or left.to_remind):
            return None
        view, _ = await start_run(session, deps, as_of=today, requested_by="schedule")
        return view
