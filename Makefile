# `make run` and `make test` each build .venv from nothing when it is missing or stale.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck unit bench docs clean generate

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt torch
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/lossserve serve --host 127.0.0.1 --http-port 8000 --grpc-port 50051

generate: $(STAMP)
	$(PY) scripts/generate_proto.py
	$(PY) scripts/export_openapi.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

docs: $(STAMP)
	$(PY) scripts/gen_loss_docs.py --check README.md

unit: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

test: lint typecheck docs unit

bench: $(STAMP)
	$(PY) bench/losses.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
