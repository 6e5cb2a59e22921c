"""Cross-service tests share the root conftest's `infra` fixture (real Kafka, PostgreSQL, SMTP)."""
