# Every target creates or reuses the project's own virtual environment.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PROTOS := $(wildcard proto/pruning_spec/v1/*.proto)

.PHONY: test demo tour lint proto docs bench bench-smoke clean

$(STAMP): pyproject.toml setup.py $(PROTOS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,tensorflow,plot,demo]'
	touch $@

## test: lint, then the whole suite (creates the environment on first use)
test: $(STAMP) lint bench-smoke
	$(PY) -m pytest -q

## demo: train a digit classifier dense, then prune it to 92% with examples/digits.txtpb
demo: $(STAMP)
	$(PY) examples/train_digits.py

## tour: load, validate and print every example spec, in every format
tour: $(STAMP)
	$(PY) examples/spec_tour.py

## lint: ruff (lint and format) and mypy --strict on the package
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

## proto: regenerate pruning_spec/v1/*_pb2.py(i) in place after editing a .proto
proto: $(STAMP)
	$(PY) -c "import runpy, pathlib; runpy.run_path('setup.py', run_name='proto')['compile_protos'](pathlib.Path('.'))"

## docs: regenerate docs/reference.md from the schema
docs: $(STAMP)
	$(PY) -m pruning_spec docs --output docs/reference.md

## bench: speed figures against their targets (results in benchmarks/results/)
bench: $(STAMP)
	$(PY) benchmarks/bench_hparams.py --json benchmarks/results/hparams.json
	$(PY) benchmarks/bench_cli.py --json benchmarks/results/cli.json
	$(PY) benchmarks/bench_mask_update.py --json benchmarks/results/mask_update.json

## bench-smoke: every benchmark in quick mode, so the harness cannot rot (part of make test)
bench-smoke: $(STAMP)
	$(PY) benchmarks/bench_hparams.py --quick
	$(PY) benchmarks/bench_cli.py --quick
	$(PY) benchmarks/bench_mask_update.py --quick

clean:
	rm -rf $(VENV) build *.egg-info pruning_spec/v1/*_pb2.py pruning_spec/v1/*_pb2.pyi
