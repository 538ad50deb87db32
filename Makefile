# Two entry points for a newcomer: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.radsynth-installed
# The CPU wheel of torch 2.13.0 lies on this project's machines; elsewhere pick your build, e.g.
# make test TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=
# pytest-xdist workers (one torch thread each; whole test files per worker so module fixtures are built once)
TEST_WORKERS ?= 2

.PHONY: demo test test-other-cpu clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check $(TORCH)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/radsynth demo --out demo-out --force

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS)

# The tests that threshold a training outcome (marker `outcome`) once more on other CPU kernels than this
# machine's own: torch picks kernels by instruction set, so a threshold set on one CPU can fail on another.
# AVX-512 machines rerun as an AVX2 machine; others as a machine with neither (.ci/run calls this after `test`).
test-other-cpu: $(STAMP)
	eval "$$($(BIN)/python tests/other_cpu.py)" && $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m outcome $(PYTEST_ARGS)

clean:
	rm -rf demo-out .pytest_cache
