"""Alembic environment of the notifications service; run via `kontor-notifications migrate`."""
from kontor.db import run_migrations_in_env
from kontor_notifications.adapters.orm import metadata

run_migrations_in_env(metadata)
