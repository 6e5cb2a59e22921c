"""Use cases of the invoicing service."""
