# gridlake: two commands do everything on a fresh machine.
#   make demo   generate the sample district and run every night through Airflow
#   make test   run the test suite
# Both create .venv and fetch the Delta jars on first use (`make setup` does only that).

PYTHON ?= python3.11
# the interpreter the venv is made from, found before .venv/bin goes first on PATH (below)
BASE_PYTHON := $(shell command -v $(PYTHON))
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements.lock
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | sha256sum | cut -c1-12)
# Every package, transitive ones too, at the version requirements.lock pins (`make lock` writes it from
# pyproject.toml). --offline first: a second set-up on this machine then takes them from uv's cache without
# asking the package index, which here answers every revalidation as changed, so uv rebuilt pyspark's
# 450 MB wheel from its sdist on each set-up (15-20 s, plus 7 s resolving online); when the cache lacks
# a package, the same install runs online.
UV_INSTALL = $(BIN)/uv pip install --python $(BIN)/python -c $(LOCK)
uv_install = $(UV_INSTALL) --offline -q $(1) 2>/dev/null || { echo "installing from the package index"; $(UV_INSTALL) $(1); }
JAVA_HOME ?= $(firstword $(wildcard /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-*))
export JAVA_HOME
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON := $(CURDIR)/$(BIN)/python
export PYSPARK_DRIVER_PYTHON := $(CURDIR)/$(BIN)/python
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Bytecode is written (see the set-up): a process that may not write it compiles every module it imports
# from source each time (PySpark, GX, Airflow and pandas: 1.7 s, against 0.6 s from bytecode).
unexport PYTHONDONTWRITEBYTECODE

DATA ?= $(CURDIR)/data
PYTEST_ARGS ?=
# Test processes (pytest-xdist). Two on this 2-core machine: much of a test's time is a JVM, a subprocess or
# Delta's commit protocol waiting, so two overlap well. A worker takes whole test files, and tests/e2e (which
# shares one generated district) as one unit (tests/conftest.py), in collection order so the long end-to-end
# unit starts first; TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder)

.PHONY: setup demo test test-all test-airflow lint bench airflow-ui lock clean

$(STAMP): pyproject.toml $(LOCK)
	@test -n "$(BASE_PYTHON)" || { echo "error: $(PYTHON) not found (gridlake needs Python 3.11)"; exit 1; }
	# A venv without pip (0.1 s; ensurepip took 4 s), and uv put in it by this Python's own pip (2.5 s, against
	# 3 s for upgrading the venv's pip and installing uv); a Python without pip gets the venv's pip as before.
	@test -d $(VENV) || $(BASE_PYTHON) -m venv --without-pip $(VENV)
	@test -x $(BIN)/uv || $(BASE_PYTHON) -m pip --python $(BIN)/python install -q uv 2>/dev/null \
		|| { $(BIN)/python -m ensurepip >/dev/null && $(BIN)/python -m pip install -q --upgrade pip uv; }
	# Not compiled to bytecode here: make's commands run without PYTHONDONTWRITEBYTECODE (below), so a module
	# is compiled once, into __pycache__, by the first process that imports it, and read from there by every
	# process after, in make or not. Compiling the runtime set's 11,000 files at set-up took 13.7 s of the demo's
	# 19.6 s set-up; its processes import 4,200 of them.
	$(call uv_install,-e .)
	$(call uv_install,-r pyproject.toml --extra dev)
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP)
	$(BIN)/gridlake setup

demo: setup
	$(BIN)/gridlake demo --data $(DATA)

# The default suite: unit, integration and the end-to-end night (what CI runs).
test: setup
	$(BIN)/python -m pytest -m "not slow" $(XDIST) --durations=30 $(PYTEST_ARGS)

# Everything, including the Airflow DAG runs and the standalone-cluster run (long).
test-all: setup
	GRIDLAKE_E2E_NIGHTS=$${GRIDLAKE_E2E_NIGHTS:-2} $(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

test-airflow: setup
	$(BIN)/python -m pytest -m airflow $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(call uv_install,-r pyproject.toml --extra bench)
	$(BIN)/gridlake bench pipeline --scale street --data $(CURDIR)/data-bench

airflow-ui: setup
	$(BIN)/gridlake airflow-ui --data $(DATA)

# Re-pin every package after a change to pyproject.toml (online; review the diff of requirements.lock).
lock: setup
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra bench --universal --python-version 3.11 -q \
		--custom-compile-command "make lock" -o $(LOCK)

clean:
	rm -rf data data-bench .pytest_cache .ruff_cache
