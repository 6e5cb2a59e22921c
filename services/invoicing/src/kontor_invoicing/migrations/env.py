"""Alembic environment of the invoicing service; run via `kontor-invoicing migrate`."""
from kontor.db import run_migrations_in_env
from kontor_invoicing.adapters.orm import metadata

run_migrations_in_env(metadata)
