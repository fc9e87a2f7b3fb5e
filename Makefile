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
CORPORA  ?= $(CORPUS)
CACHE_OPT := $(if $(CACHE),--cache $(CACHE),)
# make tables: DEEP=0 skips the deep systems; SEGMENTS and PROFILE pick the deep grid.
DEEP     ?= 1
SEGMENTS ?= 1,2,3,4,5
PROFILE  ?= fast
# DEEP_SPKNORM=on|both adds the deep systems on per-speaker normalized log-mel (-spknorm runs).
DEEP_SPKNORM ?= off
# SYSTEMS=all (or a comma list of crnn,crnn-ctc,crnn-mk,dcnn-blstm-att) adds the systems table's models.
SYSTEMS  ?=
DEEP_OPT := $(if $(filter 0,$(DEEP)),--no-deep,--deep --segments $(SEGMENTS) --profile $(PROFILE)) \
            --deep-speaker-norm $(DEEP_SPKNORM) \
            $(if $(SYSTEMS),--systems $(SYSTEMS),)
# make demo: a small deep run on the demo corpus and the CRNN of the systems table
# (DEMO_SYSTEMS=all runs all four: a few more minutes).
DEMO_SEGMENTS ?= 3
DEMO_PROFILE  ?= tiny
DEMO_SYSTEMS  ?= crnn

.PHONY: install demo test bench tables report clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

demo: $(STAMP)
	$(SB) demo-corpus --to $(DEMO_DIR)/corpus
	$(SB) manifest --corpus demo --root $(DEMO_DIR)/corpus --out $(DEMO_DIR)/manifest.csv
	$(SB) extract --corpus demo --root $(DEMO_DIR)/corpus --jobs $(JOBS) --cache $(DEMO_DIR)/cache
	$(SB) grid --corpus demo --root $(DEMO_DIR)/corpus --jobs $(JOBS) --cache $(DEMO_DIR)/cache \
	  --runs $(DEMO_DIR)/runs --segments $(DEMO_SEGMENTS) --profile $(DEMO_PROFILE) \
	  $(if $(DEMO_SYSTEMS),--systems $(DEMO_SYSTEMS),)
	$(SB) tables --corpus demo --runs $(DEMO_DIR)/runs --out $(DEMO_DIR)/tables
	$(SB) report --corpus demo --runs $(DEMO_DIR)/runs --out $(DEMO_DIR)/report
	$(SB) train --corpus demo --root $(DEMO_DIR)/corpus --cache $(DEMO_DIR)/cache --runs $(DEMO_DIR)/runs \
	  --jobs $(JOBS) --from-run best --out $(DEMO_DIR)/model --overwrite
	$(SB) predict --model $(DEMO_DIR)/model --speaker-folder 2 $(DEMO_DIR)/corpus/spk1m/*/s0[12].wav

tables: $(STAMP)
	$(SB) extract --corpus $(CORPUS) --root $(ROOT) --jobs $(JOBS) $(CACHE_OPT)
	$(SB) grid --corpus $(CORPUS) --root $(ROOT) --jobs $(JOBS) $(CACHE_OPT) --runs $(RUNS) $(DEEP_OPT)
	$(SB) tables --corpus $(CORPUS) --runs $(RUNS)
	$(SB) report --corpus $(CORPUS) --runs $(RUNS)

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
