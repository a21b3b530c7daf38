# `make run` and `make test` each build .venv from nothing when it is missing or stale.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.run-stamp
STAMP := $(VENV)/.installed-stamp
# Where pip finds torch's CPU build when it is not on the machine already, e.g.
# make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
TS := clients/typescript
NODE_STAMP := $(TS)/node_modules/.installed-stamp

.PHONY: run test test-deploy lint typecheck unit bench docs clean generate check-generated

# What serving and training need (make run): lossserve with its server extra and the wire
# package it shares with the Python client (proto/); no test or dev tool.
$(RUN_STAMP): pyproject.toml constraints.txt proto/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) torch
	$(PY) -m pip install --quiet -c constraints.txt -e ./proto -e ".[server]"
	touch $(RUN_STAMP)

# The dev tools on top (make test): pytest, linters, generators, the optional GBDT libraries,
# the Python client. mypy finds the package lossserve (the folder service/) by a link.
$(STAMP): $(RUN_STAMP) clients/python/pyproject.toml
	$(PY) -m pip install --quiet -c constraints.txt -e ./proto -e clients/python -e ".[server,dev]"
	mkdir -p .mypy-path && ln -sfn ../service .mypy-path/lossserve
	touch $(STAMP)

# The TypeScript client's toolchain (its contract test and generator run on it).
$(NODE_STAMP): $(TS)/package.json $(TS)/package-lock.json
	npm ci --prefix $(TS) --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

MODELS ?= models
# The ports `make run` serves on, e.g. make run HTTP_PORT=8080 GRPC_PORT=50052
HTTP_PORT ?= 8000
GRPC_PORT ?= 50051

# On a fresh clone ./models is empty: train the two demo models first (about 30 s), then
# serve them; a model trained into ./models while it runs is served within 5 s (poll).
# digits uses plain cross-entropy: on the benchmarks of docs/results.md no loss beats it by
# more than the noise.
run: $(RUN_STAMP)
	@if [ -z "$$(ls -A $(MODELS) 2>/dev/null)" ]; then \
	  $(VENV)/bin/lossserve train --dataset digits-lt --loss cross_entropy \
	    --name digits --model-repository $(MODELS) && \
	  $(VENV)/bin/lossserve train --dataset multilabel-synth \
	    --loss multilabel_categorical_crossentropy --name multilabel \
	    --model-repository $(MODELS); \
	fi
	$(VENV)/bin/lossserve serve --host 127.0.0.1 --http-port $(HTTP_PORT) --grpc-port $(GRPC_PORT) \
	  --model-repository $(MODELS) --model-control poll

# Every generated file, in dependency order: the OpenAPI document (from the app), the Python
# gRPC modules + type stubs and REST client (scripts/generate.py), the TypeScript client.
generate: $(STAMP) $(NODE_STAMP)
	$(PY) scripts/export_openapi.py
	$(PY) scripts/generate.py
	PYTHON=$(abspath $(PY)) npm run --silent generate --prefix $(TS)

# CI: regenerate everything in place and fail on any difference from what is committed.
check-generated: generate
	@git status --porcelain -- openapi clients proto | grep . && \
	  { echo "generated files differ from the committed ones: run make generate"; exit 1; } || true

lint: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	npm run --silent lint --prefix $(TS)

typecheck: $(STAMP)
	$(VENV)/bin/mypy

docs: $(STAMP)
	$(PY) scripts/gen_loss_docs.py --check README.md

unit: $(STAMP) $(NODE_STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

test: lint typecheck docs unit

bench: $(STAMP)
	$(PY) bench/losses.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# The containerized deployment, built and run for real (tests/deploy; podman, podman-compose,
# debootstrap and root; skipped with the reason elsewhere). CI installs them first.
test-deploy: $(STAMP)
	LOSSSERVE_DEPLOY_TESTS=1 OMP_NUM_THREADS=1 $(PY) -m pytest -q -p no:cacheprovider -s tests/deploy
