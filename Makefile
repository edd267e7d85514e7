# `make demo` and `make test` each create .venv and install what they need.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: demo test test-slow lint docs bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	MPLBACKEND=Agg $(PY) -m stability.cli.demo
	@echo
	@echo '$$ stability check --optimizer sgd --lr 0.1 --momentum 0.9 --power-law nu=2,Lambda=10,N=1e6 --batch-size 32'
	$(VENV)/bin/stability check --optimizer sgd --lr 0.1 --momentum 0.9 \
		--power-law nu=2,Lambda=10,N=1e6 --batch-size 32

test: $(VENV)/.installed-test
	MPLBACKEND=Agg $(PY) -m pytest -q --durations=15

# the heavy cases, and every property test again with 500 examples
test-slow: $(VENV)/.installed-test
	MPLBACKEND=Agg HYPOTHESIS_PROFILE=thorough $(PY) -m pytest -q -m "slow or hypothesis" \
		--durations=15

$(VENV)/.installed-docs: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $@

# the API reference and the mathematics page; warnings are errors; the site is not committed
docs: $(VENV)/.installed-docs
	$(PY) -m sphinx -E -W --keep-going -q -b html docs docs/_build/html
	@echo 'docs: docs/_build/html/index.html'

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check stability tests benchmarks examples
	$(VENV)/bin/ruff format --check stability tests benchmarks examples

bench: $(VENV)/.installed-test
	$(PY) benchmarks/bench_regions.py
	$(PY) benchmarks/bench_checkers.py
	$(PY) benchmarks/bench_sweep_memory.py
	$(PY) benchmarks/bench_performance.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache docs/_build
