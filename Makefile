# Two entry points for a fresh machine: `make demo` (install + main job) and `make test`.
VENV ?= .venv
PYTHON ?= python3
DATA ?= ../shared/data
BIN = $(VENV)/bin

.PHONY: install demo prepare test wheel-smoke bench clean-venv

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0  # the exact torch the tests run on; pyproject declares a range
	$(BIN)/pip install --quiet -e '.[dev]'  # dev includes the serve, onnx, dicom-jpeg-lossless, parquet and cluster extras
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/covidxray predict covidxray/samples --heatmaps demo --output demo/results.csv

prepare: install
	$(BIN)/covidxray data prepare $(DATA) --out prepared --holdout siim-covid19-detection

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

wheel-smoke: install
	VENV=$(VENV) scripts/wheel_smoke.sh

bench: install
	$(BIN)/python benchmarks/data_pipeline.py $(DATA)

clean-venv:
	rm -rf $(VENV)
