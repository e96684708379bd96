# newscrawl: the two commands are `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv demo test test-fast lint eval bench clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

## a real crawl of a generated replica (300 articles) into the embedded database
demo: venv
	$(VENV)/bin/newscrawl demo --articles 300

## the whole suite (CI runs this)
test: venv
	$(PY) -m pytest -q

## the suite without the slower crawl tests
test-fast: venv
	$(PY) -m pytest -q -m "not crawl"

## the benchmark: crawl speed against its limit, per-article CPU, write path (bench/;
## builds a 3,000-article replica, serves it with nginx, installed with apt-get if missing)
bench: venv
	$(PY) -m bench $(BENCH_ARGS)

lint: venv
	$(VENV)/bin/ruff check newscrawl tests bench
	$(VENV)/bin/ruff format --check newscrawl tests bench
	$(VENV)/bin/mypy newscrawl

## crawl a generated replica (600 articles) and print per-field accuracy (exit 1 under target)
eval: venv
	$(VENV)/bin/newscrawl eval --articles 600

clean:
	rm -rf $(VENV) .newscrawl
