# Two entry points for a fresh machine: `make demo` (install + main job) and `make test`.
VENV ?= .venv
PYTHON ?= python3
DATA ?= ../shared/data
BIN = $(VENV)/bin

.PHONY: install demo prepare test bench clean-venv

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/covidxray predict covidxray/samples --heatmaps demo --output demo/results.csv

prepare: install
	$(BIN)/covidxray data prepare $(DATA) --out prepared --holdout covid19-radiography-database

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench: install
	$(BIN)/python benchmarks/data_pipeline.py $(DATA)

clean-venv:
	rm -rf $(VENV)
