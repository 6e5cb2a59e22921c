"""Benchmark: prefix search of the client registry on 100,000 clients.

Fills a fresh clients database (real PostgreSQL, the service's own migrations) with
generated clients, then times `GET /clients?q=` through the whole API stack (ASGI,
auth, SQL, serialisation) for several kinds of query, and prints median and p99 per
kind, plus the query plans (they must be index scans).

    .venv/bin/python bench/search_clients.py [--clients 100000] [--queries 300]
"""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid

import sqlalchemy as sa
import sqlalchemy.ext.asyncio

from kontor.clock import SystemClock
from kontor.logging import configure_logging
from kontor.testing import provide_infra
from kontor.testing.services import auth, running_service
from kontor_clients.adapters import repository
from kontor_clients.adapters.orm import client_search_terms, clients
from kontor_clients.domain import model
from kontor_clients.domain.identifiers import search_key
from kontor_clients.spec import SPEC

FIRST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
         "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
         "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Schmitz", "Krause", "Meier",
         "Lehmann", "Köhler", "Herrmann", "König", "Walter", "Mayer", "Huber", "Kaiser", "Fuchs", "Peters",
         "Lang", "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Vogel", "Friedrich", "Keller", "Günther",
         "Nordlicht", "Sonnenschein", "Blauwal", "Kranich", "Atelier", "Studio", "Agentur", "Büro", "Café", "Élan"]
MIDDLE = ["Medien", "Design", "Bau", "Software", "Beratung", "Kommunikation", "Film", "Musik", "Verlag", "Druck",
          "Consulting", "Events", "Architektur", "Übersetzungen", "Fotografie", "Technik", "Handel", "Logistik"]
LEGAL = ["GmbH", "AG", "KG", "e.K.", "GbR", "UG", "e.V.", "OHG", "SE", "Ltd", "SARL", "S.L."]


def generated_clients(n: int, rng: random.Random) -> list[model.Client]:
    address = model.Address("Hauptstraße 1", "10115", "Berlin", "DE")
    result, seen = [], set()
    now = SystemClock().now()
    while len(result) < n:
        name = f"{rng.choice(FIRST)} {rng.choice(MIDDLE)} {rng.choice(LEGAL)} {rng.randrange(1, 10**6)}"
        postal = f"{rng.randrange(1000, 99999):05d}"
        if (search_key(name), postal) in seen:
            continue
        seen.add((search_key(name), postal))
        result.append(model.Client(id=uuid.uuid4(), kind="company", name=name,
                                   address=model.Address(address.street, postal, address.city, "DE"), vat_id=None,
                                   leitweg_id=None, invoice_email=None, language="de",
                                   standing=model.Standing(since=now)))
    return result


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def main(infra, n_clients: int, n_queries: int) -> None:
    rng = random.Random(42)
    async with running_service(SPEC, infra, topic_prefix="bench.", start_worker=False) as svc:
        engine = sa.ext.asyncio.create_async_engine(svc.settings.database_url)
        started = time.perf_counter()
        batch_size = 5000
        population = generated_clients(n_clients, rng)
        sessions = sa.ext.asyncio.async_sessionmaker(engine)
        for i in range(0, n_clients, batch_size):
            async with sessions.begin() as session:
                await repository.add_many(session, population[i:i + batch_size])
            print(f"  loaded {min(i + batch_size, n_clients):>7,} / {n_clients:,} clients "
                  f"({time.perf_counter() - started:5.1f} s)", flush=True)
        async with engine.begin() as conn:
            await conn.execute(sa.text("ANALYZE"))
            terms = (await conn.execute(sa.select(sa.func.count()).select_from(client_search_terms))).scalar()
            total = (await conn.execute(sa.select(sa.func.count()).select_from(clients))).scalar()
        print(f"registry: {total:,} clients, {terms:,} search terms, loaded in {time.perf_counter() - started:.1f} s")

        kinds = {
            # a common first word: thousands of matches, the first page comes from the index in order
            "common prefix (3 chars, 'mül')": lambda: "mül",
            "common prefix (accent-folded, 'SCHRO')": lambda: "SCHRO",
            "a later word ('medi': word-prefix step)": lambda: "medi",
            "exact name prefix (rare)": lambda: " ".join(rng.choice(population).name.split()[:3]),
            "no match ('qqq')": lambda: "qqq",
        }
        headers = auth("member-1", "member")
        print(f"\n{'query kind':<44} {'median ms':>10} {'p99 ms':>8} {'results':>8}")
        for label, make_query in kinds.items():
            timings, sizes = [], []
            for i in range(n_queries + 20):
                q = make_query()
                t0 = time.perf_counter()
                r = await svc.http.get("/clients", params={"q": q}, headers=headers)
                elapsed = (time.perf_counter() - t0) * 1000
                assert r.status_code == 200, r.text
                if i >= 20:  # warm-up excluded
                    timings.append(elapsed)
                    sizes.append(len(r.json()))
            print(f"{label:<44} {statistics.median(timings):>10.2f} {percentile(timings, 99):>8.2f} "
                  f"{statistics.median(sizes):>8.0f}")

        async with engine.connect() as conn:
            print("\nplans:")
            for sql in ("SELECT id FROM clients WHERE name_key LIKE 'mul%' ORDER BY name_key, postal_code, "
                        "country LIMIT 20",
                        "SELECT client_id FROM client_search_terms WHERE term LIKE 'medi%' AND position > 0 "
                        "ORDER BY term, client_id LIMIT 40"):
                plan = (await conn.execute(sa.text("EXPLAIN " + sql))).scalars().all()
                print("  " + sql[:60] + "...\n    " + "\n    ".join(plan[:4]))
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    configure_logging("WARNING", "console")
    infra = provide_infra()  # starts local Kafka/PostgreSQL when none is configured (synchronous)
    try:
        asyncio.run(main(infra, args.clients, args.queries))
    finally:
        infra.close()
