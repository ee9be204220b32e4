# Every target creates or reuses the project's own virtual environment.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp
PROTOS := $(wildcard proto/pruning_spec/v1/*.proto)

DIST_CHECK := build/dist-check
# `make mutation MODULES="schedule validate"`: some of mutation/*.toml (default: all).
MODULES ?=

.PHONY: test demo tour lint proto docs bench bench-smoke dist-check mutation clean

# constraints.txt pins the direct dependencies to the versions the suite last passed with.
$(STAMP): pyproject.toml setup.py constraints.txt $(PROTOS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,tensorflow,jax,plot,demo]'
	touch $@

## test: lint, then the whole suite (creates the environment on first use)
test: $(STAMP) lint bench-smoke dist-check
	rm -f .coverage .coverage.*
	mkdir -p build
	$(PY) -m coverage run -m pytest -q
	@# Keras picks its backend once per process: the backend-neutral Keras tests again, on JAX.
	KERAS_BACKEND=jax $(PY) -m coverage run -m pytest -q tests/backends/keras/test_on_every_backend.py
	$(PY) -m coverage combine --quiet
	@# The total only, so that pytest's summary stays near the end; the table when it fails.
	@$(PY) -m coverage report --format=total --precision=1 > build/coverage-total.txt \
		|| { $(PY) -m coverage report; exit 1; }
	@echo "line and branch coverage: $$(cat build/coverage-total.txt)% (floor: fail_under in pyproject.toml)"

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

## bench: every speed figure, ours vs its baseline in the same run (results in benchmarks/results/)
bench: $(STAMP) $(BENCH_STAMP)
	$(PY) benchmarks/bench_mask_update.py --json benchmarks/results/mask_update.json
	$(PY) benchmarks/bench_model_update.py --json benchmarks/results/model_update.json
	$(PY) benchmarks/bench_global.py --json benchmarks/results/global.json
	$(PY) benchmarks/bench_n_m.py --json benchmarks/results/n_m.json
	$(PY) benchmarks/bench_jax_kernels.py --json benchmarks/results/jax_kernels.json
	KERAS_BACKEND=tensorflow $(PY) benchmarks/bench_train_step.py --json benchmarks/results/train_step.json
	KERAS_BACKEND=jax $(PY) benchmarks/bench_train_step.py --json benchmarks/results/train_step_jax.json
	$(PY) benchmarks/bench_cli.py --json benchmarks/results/cli.json
	$(PY) benchmarks/bench_hparams.py --json benchmarks/results/hparams.json
	$(PY) benchmarks/bench_hostile.py --json benchmarks/results/hostile.json
	$(PY) benchmarks/report.py benchmarks/results --output benchmarks/results/RESULTS.md

# TensorFlow Model Optimization (with tf-keras) lives in its own environment: it needs
# legacy Keras 2, which must not leak into the project's.
$(BENCH_STAMP):
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet tensorflow-cpu==2.21.0 tf-keras==2.21.0 \
		tensorflow-model-optimization==0.8.1
	touch $@

## bench-smoke: every benchmark in quick mode, so the harness cannot rot (part of make test)
bench-smoke: $(STAMP)
	rm -rf build/bench-smoke
	$(PY) benchmarks/bench_hparams.py --quick --json build/bench-smoke/hparams.json
	$(PY) benchmarks/bench_cli.py --quick --json build/bench-smoke/cli.json
	$(PY) benchmarks/bench_mask_update.py --quick --json build/bench-smoke/mask_update.json
	$(PY) benchmarks/bench_model_update.py --quick --json build/bench-smoke/model_update.json
	$(PY) benchmarks/bench_global.py --quick --json build/bench-smoke/global.json
	$(PY) benchmarks/bench_n_m.py --quick --json build/bench-smoke/n_m.json
	$(PY) benchmarks/bench_jax_kernels.py --quick --json build/bench-smoke/jax_kernels.json
	KERAS_BACKEND=tensorflow $(PY) benchmarks/bench_train_step.py --quick --json build/bench-smoke/train_step.json
	KERAS_BACKEND=jax $(PY) benchmarks/bench_train_step.py --quick --json build/bench-smoke/train_step_jax.json
	$(PY) benchmarks/bench_hostile.py --quick --json build/bench-smoke/hostile.json
	$(PY) benchmarks/report.py build/bench-smoke

## mutation: mutation scores of the kernels, N:M reference, validator, hparams and schedule (slow; not in make test)
# cosmic-ray writes one mutant at a time into a copy of the tree (two modules side by side)
# and runs the tests mutation/<module>.toml names; sessions, logs and the survivors' diffs
# go to build/mutation/. `$(PY) mutation/run.py --recheck MODULE` re-tests the survivors.
mutation: $(STAMP)
	$(PY) mutation/run.py $(MODULES)

## dist-check: build the sdist, the wheel from it, and run that wheel in a fresh venv (part of make test)
# `python -m build` builds the wheel from the unpacked sdist, so a file missing from the
# sdist fails here. A stale *.egg-info/SOURCES.txt would add files MANIFEST.in forgot, so it
# goes first (the editable install does not use it). The fresh venv (not .venv) proves the
# wheel works on its own.
dist-check: $(STAMP)
	rm -rf dist $(DIST_CHECK) $(DIST_CHECK).sdist.txt *.egg-info
	mkdir -p build
	$(PY) -m build --outdir dist .
	tar tzf dist/pruning_spec-*.tar.gz > $(DIST_CHECK).sdist.txt
	grep -q '/proto/pruning_spec/v1/pruning.proto$$' $(DIST_CHECK).sdist.txt \
		|| { echo 'dist-check: proto/ is missing from the sdist' >&2; exit 1; }
	! grep '_pb2\.pyi\?$$' $(DIST_CHECK).sdist.txt \
		|| { echo 'dist-check: generated *_pb2 files are in the sdist' >&2; exit 1; }
	$(PYTHON) -m venv $(DIST_CHECK)
	$(DIST_CHECK)/bin/python -m pip install --quiet dist/pruning_spec-*.whl
	test "$$($(DIST_CHECK)/bin/pruning-spec --version)" = \
		"pruning-spec $$($(PY) -c 'import runpy; print(runpy.run_path("pruning_spec/_version.py")["__version__"])')" \
		|| { echo 'dist-check: the installed wheel reports the wrong version' >&2; exit 1; }
	$(DIST_CHECK)/bin/pruning-spec --version
	$(DIST_CHECK)/bin/pruning-spec validate examples/*.txtpb
	@echo 'dist-check: OK'

clean:
	rm -rf dist $(VENV) $(BENCH_VENV) build *.egg-info pruning_spec/v1/*_pb2.py pruning_spec/v1/*_pb2.pyi
