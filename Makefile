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

MODELS ?= models

# On a fresh clone ./models is empty: train the two demo models first (about 30 s), then
# serve them. digits uses the loss that won `lossserve experiment digits-lt`
# (docs/results.md).
run: $(STAMP)
	@if [ -z "$$(ls -A $(MODELS) 2>/dev/null)" ]; then \
	  $(VENV)/bin/lossserve train --dataset digits-lt --loss logit_adjusted_cross_entropy \
	    --name digits --model-repository $(MODELS) && \
	  $(VENV)/bin/lossserve train --dataset multilabel-synth \
	    --loss multilabel_categorical_crossentropy --name multilabel \
	    --model-repository $(MODELS); \
	fi
	$(VENV)/bin/lossserve serve --host 127.0.0.1 --http-port 8000 --grpc-port 50051 \
	  --model-repository $(MODELS)

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
