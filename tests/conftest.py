"""Cross-service tests share the root conftest's `infra` fixture (real Kafka, PostgreSQL, SMTP)."""

import sys
from pathlib import Path

# the container tests import test modules and helpers beside them (pytest's importlib mode adds no path)
sys.path.insert(0, str(Path(__file__).resolve().parent))
