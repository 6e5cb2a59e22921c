"""Alembic environment of the orders service; run via `kontor-orders migrate`."""
from kontor.db import run_migrations_in_env
from kontor_orders.adapters.orm import metadata

run_migrations_in_env(metadata)
