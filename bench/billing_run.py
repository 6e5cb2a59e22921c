"""Benchmark: one billing run of N invoices through the public API, issued by 1 and then by 2
invoicing worker processes, in one run of this script.

For each worker count it starts a fresh platform (the local Kafka and PostgreSQL of `make up`,
started or reused; fresh databases `kontor_bench_<service>` and its own topic prefix; all four
services' APIs and workers on the usual ports, so `make up` must not be running; its own SMTP
server writing to .local/bench/<run>/mail), then through the APIs: registers clients, creates
recurring orders of two lines each (12 monthly invoices an order), submits and approves them
(confirmation skipped), and starts one billing run as of the end of the year. It measures:

- invoices/s and the time from starting the run until the last invoice is issued (numbered,
  checked by the official X-Rechnung rules when ../shared/xrechnung is there, PDF and XML stored,
  `invoice.issued` written), with the run's phases;
- the time until the last invoice e-mail has reached the SMTP server, and how long after the last
  invoice that was;
- `/healthz` p50/p99 of the invoicing API during the run (a request every 100 ms);
- the latency from `invoice.issued` (its Kafka record's timestamp) to the clients service's
  receivables ledger (the ledger row's time), p50/p99;
- where one invoice's time goes inside the workers (prepare, validate, number, render, store and
  publish, from the issuing pipeline's own step times), and the outbox relay's lag to Kafka;
- where the machine's CPU went during the run, per process (from /proc): CPU milliseconds per
  invoice for each process of the platform, since on one 2-core machine every service shares the
  cores with the invoicing workers.

Then the ratio "2 workers / 1 worker". Each worker has `--render-processes` rendering processes
(1 by default: on 2 cores one worker with a pool of two would already use both, which proves
nothing about replicas).

On one 2-core machine every service of the platform shares the cores with the invoicing workers
(the e-mails, the ledger, the orders, Kafka, PostgreSQL and the SMTP server take most of them),
so more invoicing workers cannot add much there. `--isolate` measures invoicing's own scaling: the
other services' workers are stopped while the run issues (their events wait in Kafka) and started
again when the last invoice is issued; the e-mail and ledger figures then include that catch-up.

    .venv/bin/python bench/billing_run.py [--invoices 1000] [--workers 1,2] [--render-processes 1]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy"))
os.environ.setdefault("KONTOR_LOG_FORMAT", "json")

from stack import SERVICES, Stack, say  # noqa: E402

from kontor.db import upgrade  # noqa: E402
from kontor.devinfra import cpu_seconds, local_dir, wait_for_port  # noqa: E402
from kontor.devinfra.postgres import drop_database, ensure_database  # noqa: E402
from kontor.testing import free_port  # noqa: E402
from kontor.testing.services import auth  # noqa: E402

MEMBER, ADVISOR = auth("member-bench", "member"), auth("advisor-bench", "advisor")
URL = {s.name: f"http://127.0.0.1:{s.default_port}" for s in SERVICES}
MONTHS = 12
RULES = ROOT.parent / "shared" / "xrechnung"


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


@dataclass
class Result:
    workers: int
    invoices: int
    setup_s: float = 0
    issued_s: float = 0
    mail_s: float | None = None
    run: dict = field(default_factory=dict)
    healthz_ms: list[float] = field(default_factory=list)
    ledger_ms: list[float] = field(default_factory=list)
    steps_ms: dict = field(default_factory=dict)
    relay_lag_ms: list[float] = field(default_factory=list)
    phases: dict = field(default_factory=dict)
    cpu_ms: dict = field(default_factory=dict)  # per process kind: CPU ms per invoice during the run

    @property
    def rate(self) -> float:
        return self.invoices / self.issued_s if self.issued_s else 0.0


async def ok(response, *expected: int) -> dict:
    r = await response
    assert r.status_code in (expected or (200, 201)), (r.request.url, r.status_code, r.text[:500])
    return r.json()


async def create_orders(http: dict[str, httpx.AsyncClient], orders: int, run: str) -> None:
    clients = [await ok(http["clients"].post("/clients", headers=MEMBER, json={
        "kind": "company", "name": f"Bench {run} Kunde {c} GmbH", "language": "de",
        "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}}))
        for c in range(max(1, min(50, orders // 10)))]
    gate = asyncio.Semaphore(8)
    done = 0

    async def one(i: int) -> None:
        nonlocal done
        client = clients[i % len(clients)]
        body = {"client_id": client["id"], "contact_person": {"name": "Erika Muster",
                                                               "email": f"erika.{run}.{i}@kunde.example"},
                "sector": "design", "place_of_service": "DE", "project_name": f"Betreuung {i}",
                "description": "Laufende Betreuung der Website.",
                "lines": [{"description": "Wartung und Updates", "quantity": "8", "unit": "hour",
                           "unit_price": "85.00"},
                          {"description": "Redaktionelle Pflege", "quantity": "1", "unit": "day",
                           "unit_price": "640.00"}],
                "currency": "EUR", "service_period": {"start": "2027-01-01", "end": "2027-12-31"},
                "confirmation": {"mode": "skip", "skip_reason": "framework contract signed on paper"},
                "payment": {"mode": "recurring", "interval": "month", "first_invoice_date": "2027-01-01",
                            "due_in_days": 14}}
        async with gate:
            for _ in range(100):  # orders learns each client from its event within a moment
                r = await http["orders"].post("/orders", json=body, headers=MEMBER)
                if r.status_code == 201:
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError(r.text)
            oid = r.json()["order_id"]
            await ok(http["orders"].post(f"/orders/{oid}/submit", headers=MEMBER))
            approved = await ok(http["orders"].post(f"/orders/{oid}/approve", headers=ADVISOR))
            assert approved["status"] == "active", approved
            done += 1

    await asyncio.gather(*(one(i) for i in range(orders)))


async def table_count(dsn: str, table: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 - a table name of the bench
    finally:
        await conn.close()


def mail_count(maildir: Path) -> int:
    return sum(1 for sub in ("new", "cur") if (maildir / sub).is_dir() for _ in os.scandir(maildir / sub))


async def sample_healthz(stop: asyncio.Event, out: list[float]) -> None:
    async with httpx.AsyncClient(base_url=URL["invoicing"], timeout=10) as http:
        while not stop.is_set():
            started = time.perf_counter()
            r = await http.get("/healthz")
            if r.status_code == 200:
                out.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.1)


async def ledger_latencies(bootstrap: str, prefix: str, clients_dsn: str) -> list[float]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(f"{prefix}kontor.invoices.v1", bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
    await consumer.start()
    issued: dict[str, float] = {}
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=2000, max_records=5000)
            if not batch:
                break
            for records in batch.values():
                for r in records:
                    if dict(r.headers).get("ce_type") == b"kontor.invoice.issued.v1":
                        issued[json.loads(r.value)["invoice_id"]] = r.timestamp / 1000
    finally:
        await consumer.stop()
    conn = await asyncpg.connect(clients_dsn)
    try:
        rows = await conn.fetch("SELECT invoice_id::text AS id, extract(epoch FROM updated_at) AS at FROM receivables")
    finally:
        await conn.close()
    return [(float(r["at"]) - issued[r["id"]]) * 1000 for r in rows if r["id"] in issued]


async def relay_lag(dsn: str) -> list[float]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT extract(epoch FROM published_at - created_at) * 1000 AS ms FROM outbox "
                                "WHERE event_type = 'kontor.invoice.issued.v1' AND published_at IS NOT NULL")
    finally:
        await conn.close()
    return [float(r["ms"]) for r in rows]


def cpu_times() -> dict[str, float]:
    """CPU seconds used so far by the platform's processes, by kind (Linux /proc)."""
    found: dict[str, float] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            seconds = cpu_seconds(pid)
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("postgres"):
            kind = "postgres"
        elif "kafka.Kafka" in cmd:
            kind = "kafka"
        elif "multiprocessing.spawn" in cmd:
            kind = "invoicing rendering processes"
        elif "kontor.devinfra.smtp" in cmd:
            kind = "smtp server"
        elif " -m kontor_" in cmd:
            kind = cmd.split(" -m kontor_")[1].split()[0] + " " + cmd.split(" -m kontor_")[1].split()[1]
        elif "billing_run.py" in cmd:
            kind = "this bench"
        else:
            continue
        found[kind] = found.get(kind, 0.0) + seconds
    return found


def pipeline_steps(lines: list[str]) -> dict:
    """The issuing pipeline's step times (ms per invoice), from each worker's last log line of them."""
    steps: dict[str, list[float]] = {}
    for line in lines:
        if "issuing pipeline stopped" in line:
            try:
                ms = json.loads(line)["ms"]
            except (ValueError, KeyError):
                continue
            for k, v in ms.items():
                steps.setdefault(k, []).append(v)
    return {k: round(statistics.mean(v), 2) for k, v in steps.items()}


async def phase(stack: Stack, workers: int, args, run: str) -> Result:
    orders = -(-args.invoices // MONTHS)
    result = Result(workers, orders * MONTHS)
    prefix = f"bench{run}w{workers}."
    env: dict[str, dict[str, str]] = {}
    for spec in SERVICES:
        name = f"kontor_bench_{spec.name}"
        await drop_database(stack.postgres.admin_url, name)
        await ensure_database(stack.postgres.admin_url, name)
        url = stack.postgres.url(name)
        await upgrade(url, spec.migrations)
        env[spec.name] = {f"{spec.env_prefix}DATABASE_URL": url, f"{spec.env_prefix}TOPIC_PREFIX": prefix}
    env["invoicing"] |= {"KONTOR_INVOICING_BILLING_RUNS_ENABLED": "false",
                         "KONTOR_INVOICING_RENDER_PROCESSES": str(args.render_processes)}
    env["orders"] |= {"KONTOR_ORDERS_ORDER_RUN_INTERVAL_S": "100000"}
    maildir = local_dir("bench", run, f"mail-{workers}")
    smtp_port = free_port()
    log = maildir.parent / f"smtp-{workers}.log"
    smtp = await asyncio.create_subprocess_exec(sys.executable, "-m", "kontor.devinfra.smtp", "--port", str(smtp_port),
                                                "--maildir", str(maildir), stdout=log.open("ab"),
                                                stderr=asyncio.subprocess.STDOUT)
    await asyncio.to_thread(wait_for_port, "127.0.0.1", smtp_port, 30, "SMTP server")
    env["notifications"] |= {"KONTOR_NOTIFICATIONS_SMTP_PORT": str(smtp_port)}
    for spec in SERVICES:
        await stack.start_process(spec, "api", env=env[spec.name])
        count = workers if spec.name == "invoicing" else args.notifications_workers \
            if spec.name == "notifications" else 1
        for n in range(count):
            await stack.start_process(spec, "worker", n, env=env[spec.name])
    try:
        await stack.wait_ready()
        http = {name: httpx.AsyncClient(base_url=url, timeout=60) for name, url in URL.items()}
        started = time.monotonic()
        await create_orders(http, orders, f"{run}{workers}")
        invoicing_dsn = stack.postgres.url("kontor_bench_invoicing").replace("+asyncpg", "")
        while await table_count(invoicing_dsn, "planned_invoices") < result.invoices:  # noqa: ASYNC110 - polls
            await asyncio.sleep(0.5)  # a table the services fill
        result.setup_s = time.monotonic() - started
        say(f"{workers} worker(s): {orders} orders, {result.invoices} planned invoices in {result.setup_s:.0f}s; "
            "billing run as of 2027-12-31")

        if args.isolate:
            for other in ("orders-worker", "clients-worker", "notifications-worker"):
                await stack.stop_processes(other)
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_healthz(stop, result.healthz_ms))
        cpu_before = cpu_times()
        t0 = time.monotonic()
        report = await ok(http["invoicing"].post("/billing-runs", json={"as_of": "2027-12-31"}, headers=ADVISOR),
                          202)
        last_phase = None
        while True:
            report = await ok(http["invoicing"].get(f"/billing-runs/{report['run_id']}", headers=ADVISOR))
            if report["phase"] != last_phase:
                result.phases[report["phase"]] = round(time.monotonic() - t0, 1)
                last_phase = report["phase"]
            if report["issued"] + report["held"] >= result.invoices or report["status"] in ("finished", "failed"):
                break
            if result.mail_s is None and mail_count(maildir) >= result.invoices:
                result.mail_s = time.monotonic() - t0
            await asyncio.sleep(0.25)
        result.issued_s = time.monotonic() - t0
        cpu_after = cpu_times()
        result.cpu_ms = {k: round(1000 * (v - cpu_before.get(k, 0.0)) / result.invoices, 1)
                         for k, v in sorted(cpu_after.items(), key=lambda kv: -(kv[1] - cpu_before.get(kv[0], 0)))
                         if v - cpu_before.get(k, 0.0) > 0}
        stop.set()
        await sampler
        result.run = report
        if args.isolate:
            for spec in SERVICES:
                if spec.name != "invoicing":
                    count = args.notifications_workers if spec.name == "notifications" else 1
                    for n in range(count):
                        await stack.start_process(spec, "worker", n, env=env[spec.name])
        deadline = time.monotonic() + 600
        while result.mail_s is None and time.monotonic() < deadline:
            if mail_count(maildir) >= result.invoices:
                result.mail_s = time.monotonic() - t0
            await asyncio.sleep(0.25)
        say(f"{workers} worker(s): last invoice issued after {result.issued_s:.1f}s, last e-mail after "
            f"{result.mail_s if result.mail_s is None else round(result.mail_s, 1)}s")
        clients_dsn = stack.postgres.url("kontor_bench_clients").replace("+asyncpg", "")
        deadline = time.monotonic() + 600
        while await table_count(clients_dsn, "receivables") < result.invoices and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.5)  # polls the ledger (another process) until it caught up with the last events
        await asyncio.sleep(1)
        result.ledger_ms = await ledger_latencies(stack.kafka.bootstrap, prefix,
                                                  stack.postgres.url("kontor_bench_clients").replace("+asyncpg", ""))
        result.relay_lag_ms = await relay_lag(invoicing_dsn)
        for client in http.values():
            await client.aclose()
    finally:
        await stack.stop_processes("")
        result.steps_ms = pipeline_steps(stack.output.get("invoicing-worker", []) +
                                         [ln for n, out in stack.output.items() if n.startswith("invoicing-worker-")
                                          for ln in out])
        stack.output.clear()
        smtp.terminate()
        await smtp.wait()
    return result


def report(results: list[Result], args) -> None:
    print()
    print(f"billing run of {results[0].invoices} invoices (12 a recurring order, 2 lines each), "
          f"{args.render_processes} rendering process(es) per worker, X-Rechnung checked: {RULES.is_dir()}, "
          f"{'other workers stopped during the run (--isolate), ' if args.isolate else 'whole platform running, '}"
          f"python {sys.version.split()[0]} ({sys.executable})")
    head = f"{'workers':>7} {'inv/s':>7} {'issued s':>9} {'mail s':>7} {'mail after':>10} {'healthz p50/p99 ms':>19} " \
           f"{'ledger p50/p99 ms':>18} {'setup s':>8}  phases (s from start)"
    print(head)
    for r in results:
        after = f"{r.mail_s - r.issued_s:+.1f}" if r.mail_s is not None else "n/a"
        mail = f"{r.mail_s:.1f}" if r.mail_s is not None else "n/a"
        print(f"{r.workers:>7} {r.rate:>7.1f} {r.issued_s:>9.1f} {mail:>7} {after:>10} "
              f"{pct(r.healthz_ms, 50):>8.1f}/{pct(r.healthz_ms, 99):<10.1f} "
              f"{pct(r.ledger_ms, 50):>8.0f}/{pct(r.ledger_ms, 99):<9.0f} {r.setup_s:>8.0f}  {r.phases}")
    print()
    print("where one invoice's time goes in the workers (ms, mean per invoice; validate and render inside the "
          "rendering process):")
    for r in results:
        print(f"  {r.workers} worker(s): {r.steps_ms}; outbox → Kafka lag p50 {pct(r.relay_lag_ms, 50):.0f} ms, "
              f"p99 {pct(r.relay_lag_ms, 99):.0f} ms; run: status {r.run.get('status')}, issued "
              f"{r.run.get('issued')}, held {r.run.get('held')}, {r.run.get('invoices_per_s')}/s by the run's clock")
    print("\nCPU per invoice during the run, by process (ms; the machine has "
          f"{os.cpu_count()} cores, so {1000 * (os.cpu_count() or 1) / max(r.rate for r in results):.0f} ms per "
          "invoice of all cores at the best rate above):")
    for r in results:
        print(f"  {r.workers} worker(s): total {sum(r.cpu_ms.values()):.0f} ms: " +
              ", ".join(f"{k} {v}" for k, v in r.cpu_ms.items()))
    if len(results) >= 2 and results[0].rate:
        print(f"\nratio {results[1].workers} workers / {results[0].workers} worker: "
              f"{results[1].rate / results[0].rate:.2f}× ({results[1].rate:.1f} vs {results[0].rate:.1f} invoices/s)")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=1000)
    parser.add_argument("--workers", default="1,2", help="worker counts, one platform each, in this order")
    parser.add_argument("--render-processes", type=int, default=1)
    parser.add_argument("--notifications-workers", type=int, default=1)
    parser.add_argument("--isolate", action="store_true", help="stop the other services' workers while the run "
                        "issues (invoicing's own scaling); they catch up afterwards")
    args = parser.parse_args()
    run = uuid.uuid4().hex[:6]
    stack = Stack(echo=False)
    await asyncio.to_thread(stack.start_infra)
    results = []
    try:
        for workers in (int(w) for w in args.workers.split(",")):  # one phase after the other
            results.append(await phase(stack, workers, args, run))  # noqa: PERF401
    finally:
        await stack.stop_services()
        for spec in SERVICES:
            await drop_database(stack.postgres.admin_url, f"kontor_bench_{spec.name}")
        await asyncio.to_thread(stack.stop_infra)
    report(results, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
