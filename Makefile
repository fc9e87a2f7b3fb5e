# Entry points. Every target creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SB     := $(VENV)/bin/serbench
STAMP  := $(VENV)/.installed

DEMO_DIR ?= demo
CORPUS   ?= casia
ROOT     ?= ../shared/corpora/casia
JOBS     ?= 2
RUNS     ?= runs
CACHE    ?=
CACHE_OPT := $(if $(CACHE),--cache $(CACHE),)

.PHONY: install demo test bench tables clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

demo: $(STAMP)
	$(SB) demo-corpus --to $(DEMO_DIR)/corpus
	$(SB) manifest --corpus demo --root $(DEMO_DIR)/corpus --out $(DEMO_DIR)/manifest.csv

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m benchmarks.run --out bench-results

clean:
	rm -rf $(VENV) $(DEMO_DIR) bench-results .pytest_cache
