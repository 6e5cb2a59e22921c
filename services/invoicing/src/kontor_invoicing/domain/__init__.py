"""Domain of the invoicing service (pure, no I/O)."""
