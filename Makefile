# Entry points. Every target creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SB     := $(VENV)/bin/serbench
STAMP  := $(VENV)/.installed

DEMO_DIR ?= demo
CORPUS   ?= casia
ROOT     ?= data/$(CORPUS)
JOBS     ?= 2
RUNS     ?= runs
CACHE    ?=
CORPORA  ?= $(CORPUS)
CACHE_OPT := $(if $(CACHE),--cache $(CACHE),)
# make tables: the paper's experiment file (copy it to change what runs); ONLY='IS10-*,cnn-sru-N3' filters it;
# SYSTEMS=1 also runs the other seed papers' systems (recipes/seed-papers.toml).
EXPERIMENT ?= recipes/jiang2019.toml
ONLY     ?=
SYSTEMS  ?=
ONLY_OPT := $(if $(ONLY),--only '$(ONLY)',)
# make demo: the demo experiment (feature SVMs, tiny CNN+SRU/CNN/SRU at N = 3 and a CRNN).
DEMO_EXPERIMENT ?= recipes/demo.toml

.PHONY: install demo test bench tables report clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

demo: $(STAMP)
	$(SB) demo-corpus --to $(DEMO_DIR)/corpus
	$(SB) manifest --corpus demo --root $(DEMO_DIR)/corpus --out $(DEMO_DIR)/manifest.csv --overwrite
	$(SB) extract --corpus demo --root $(DEMO_DIR)/corpus --jobs $(JOBS) --cache $(DEMO_DIR)/cache
	$(SB) run $(DEMO_EXPERIMENT) --corpus demo --root $(DEMO_DIR)/corpus --jobs $(JOBS) --cache $(DEMO_DIR)/cache \
	  --runs $(DEMO_DIR)/runs
	$(SB) tables --corpus demo --experiment $(DEMO_EXPERIMENT) --runs $(DEMO_DIR)/runs --out $(DEMO_DIR)/tables
	$(SB) report --corpus demo --experiment $(DEMO_EXPERIMENT) --runs $(DEMO_DIR)/runs --out $(DEMO_DIR)/report
	$(SB) train --corpus demo --root $(DEMO_DIR)/corpus --cache $(DEMO_DIR)/cache --runs $(DEMO_DIR)/runs \
	  --jobs $(JOBS) --from-run best --out $(DEMO_DIR)/model --overwrite
	$(SB) predict --model $(DEMO_DIR)/model --speaker-folder 2 $(DEMO_DIR)/corpus/spk1m \
	  --out $(DEMO_DIR)/predictions.csv --overwrite

tables: $(STAMP)
	$(SB) extract --corpus $(CORPUS) --root $(ROOT) --jobs $(JOBS) $(CACHE_OPT)
	$(SB) run $(EXPERIMENT) --corpus $(CORPUS) --root $(ROOT) --jobs $(JOBS) $(CACHE_OPT) --runs $(RUNS) $(ONLY_OPT)
	$(if $(SYSTEMS),$(SB) run recipes/seed-papers.toml --corpus $(CORPUS) --root $(ROOT) --jobs $(JOBS) $(CACHE_OPT) --runs $(RUNS),)
	$(SB) tables --corpus $(CORPUS) --experiment $(EXPERIMENT) --runs $(RUNS)
	$(SB) report --corpus $(CORPUS) --experiment $(EXPERIMENT) --runs $(RUNS)

# make report CORPORA="casia emodb": one page opening with the cross-corpus leaderboard
report: $(STAMP)
	$(SB) report $(foreach c,$(CORPORA),--corpus $(c)) --runs $(RUNS)

test: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m benchmarks.run --out bench-results

clean:
	rm -rf $(VENV) $(DEMO_DIR) bench-results .pytest_cache .import_linter_cache
