"""Alembic environment of the clients service; run via `kontor-clients migrate`."""
from kontor.db import run_migrations_in_env
from kontor_clients.adapters.orm import metadata

run_migrations_in_env(metadata)
