# Kontor: `make up` runs the platform, `make test` runs the static checks and every test. Both set up first.
.DEFAULT_GOAL := help
PY := .venv/bin/python

LINT_PATHS := shared services tests bench deploy conftest.py

.PHONY: help setup up infra lint test test-unit bench bench-billing demo generate clean-data images compose-up compose-down

help:
	@echo "make up        set up, then run Kafka, PostgreSQL, SMTP and all four services (Ctrl-C stops)"
	@echo "make test      set up, run the static checks (make lint), then the whole test suite against real Kafka/PostgreSQL/SMTP"
	@echo "               with the container tests (marked 'containers'; KONTOR_CONTAINERS=0 leaves them out)"
	@echo "make images    the container images (docker or podman; without a registry, stand-ins from Debian's packages)"
	@echo "make compose-up / compose-down  compose.yaml on the local images under podman (KONTOR_JWT_SECRET=...)"
	@echo "make lint      the static checks alone: ruff over all Python code, mypy over shared/ and the services"
	@echo "make infra     set up, then run only Kafka, PostgreSQL and SMTP"
	@echo "make test-unit only the fast tests without I/O"
	@echo "make demo      the whole journey, live, against the platform of make up (run it in a second terminal)"
	@echo "make bench     run the benchmarks under bench/ (they print their figures)"
	@echo "make bench-billing  one billing run of INVOICES (1000) with 1 and 2 invoicing workers (not while make up runs)"
	@echo "make generate  regenerate contract schema snapshots and AsyncAPI documents"
	@echo "make clean-data  delete local Kafka/PostgreSQL/mail data (.local/)"

setup:
	@bash deploy/bootstrap.sh

up: setup
	@$(PY) deploy/stack.py up

infra: setup
	@$(PY) deploy/stack.py infra

# ruff (rules in pyproject.toml [tool.ruff]) and mypy (pyproject.toml [tool.mypy]: shared/src, services/*/src)
lint: setup
	.venv/bin/ruff check $(LINT_PATHS)
	.venv/bin/mypy

# the container tests need the images (built once, then reused while their inputs stay the same);
# KONTOR_CONTAINERS=0 runs the rest only
KONTOR_CONTAINERS ?= 1
ifeq ($(KONTOR_CONTAINERS),1)
test: setup lint images
	@KONTOR_REQUIRE_CONTAINERS=1 $(PY) -m pytest $(PYTEST_ARGS)
else
test: setup lint
	@$(PY) -m pytest -m 'not containers' $(PYTEST_ARGS)
endif

images: setup
	@bash deploy/containers.sh images

compose-up: images
	@bash deploy/containers.sh compose-up $(PROJECT)

compose-down:
	@bash deploy/containers.sh compose-down $(PROJECT)

test-unit: setup
	@$(PY) -m pytest -m unit $(PYTEST_ARGS)

demo: setup
	@$(PY) deploy/demo.py

bench:
	@KONTOR_BENCH=1 bash deploy/bootstrap.sh
	@$(PY) bench/render_invoices.py
	@$(PY) bench/search_clients.py

INVOICES ?= 1000
bench-billing: setup
	@$(PY) bench/billing_run.py --invoices $(INVOICES) $(BENCH_ARGS)

generate: setup
	@$(PY) -m kontor.contracts.snapshots --write
	@for s in clients orders invoicing notifications; do KONTOR_ENV=development .venv/bin/kontor-$$s asyncapi --write; done

clean-data:
	rm -rf .local/kafka .local/postgres .local/mail .local/test-mail
