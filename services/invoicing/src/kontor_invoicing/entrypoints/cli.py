"""`kontor-invoicing billing-run --as-of D`: start a billing run and follow it with a progress
bar until it ends (the invoicing workers do the work; this command only watches). It talks to
the service's database with the service's settings, as `migrate` does. Its date obeys the rule
the API's does: a business date, not after today unless the deployment allows it
(KONTOR_INVOICING_ALLOW_FUTURE_AS_OF)."""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys

from tqdm import tqdm

from kontor.clock import SystemClock
from kontor.db import create_engine, create_session_factory
from kontor.errors import InvalidInput
from kontor.outbox import Outbox
from kontor.service import Command
from kontor.settings import ServiceSettings
from kontor.topics import Topics
from kontor_invoicing.adapters.orm import outbox
from kontor_invoicing.service_layer import runs, services
from kontor_invoicing.settings import InvoicingSettings


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None,
                        help="the run's date (YYYY-MM-DD); today in Europe/Berlin by default, not later "
                             "unless KONTOR_INVOICING_ALLOW_FUTURE_AS_OF=true")
    parser.add_argument("--by", default="cli", help="who started it (shown in the run)")
    parser.add_argument("--no-wait", action="store_true", help="start it and print its id, do not follow it")
    parser.add_argument("--poll-s", type=float, default=0.5)


def _total(view: runs.RunView) -> int:
    left = view.remaining or {}
    done = view.issued + view.held
    return done + left.get("to_queue", 0) + left.get("to_issue", 0) + left.get("stuck", 0)


async def follow(settings: InvoicingSettings, args: argparse.Namespace, out=sys.stderr) -> runs.RunView:
    engine = create_engine(settings.database_url, pool_size=1)
    sessions = create_session_factory(engine)
    deps = services.Deps(Outbox(outbox, Topics(settings.topic_prefix)), SystemClock(), settings)
    try:
        async with sessions.begin() as session:
            view, created = await runs.start_run(session, deps, as_of=args.as_of or deps.today,
                                                 requested_by=args.by)
        print(f"billing run {view.run_id} as of {view.as_of} "
              f"({'started' if created else 'already ' + view.status})", file=out)
        if args.no_wait:
            return view
        with tqdm(total=max(_total(view), 1), unit="inv", desc=view.phase, file=out, dynamic_ncols=True) as bar:
            while True:
                async with sessions() as session:
                    view = await runs.get_run(session, deps, view.run_id)
                bar.total = max(_total(view), bar.total or 1, 1)
                bar.n = view.issued + view.held
                bar.set_description(view.phase)
                bar.set_postfix(drafted=view.drafted, held=view.held, reminded=view.reminded,
                                rate=view.invoices_per_s or 0)
                bar.refresh()
                if view.status not in ("queued", "running"):
                    bar.total = max(bar.n, 1)
                    bar.n = bar.total  # ended: a run with nothing to issue is done, not 0 %
                    bar.refresh()
                    break
                await asyncio.sleep(args.poll_s)
        print(f"{view.status}: drafted {view.drafted}, issued {view.issued}, held {view.held}, "
              f"reminded {view.reminded} in {view.elapsed_s} s ({view.invoices_per_s or 0} invoices/s)", file=out)
        for error in view.errors:
            print(f"  error: {error}", file=out)
        return view
    finally:
        await engine.dispose()


def _run(settings: ServiceSettings, args: argparse.Namespace) -> int:
    if not isinstance(settings, InvoicingSettings):
        raise TypeError("billing-run runs with InvoicingSettings")
    try:
        view = asyncio.run(follow(settings, args))
    except InvalidInput as refused:
        for field, message in refused.errors:
            print(f"billing-run: --{field.replace('_', '-')}: {message}", file=sys.stderr)
        return 2
    return 0 if view.status in ("finished", "queued", "running") else 1


BILLING_RUN = Command("billing-run", "start a billing run as of a date and follow it to its end",
                      _arguments, _run)
