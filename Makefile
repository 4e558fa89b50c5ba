# asrsweep: `make demo` (set up from nothing, run the default experiment) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# Jobs run `python -m asrsweep.<stage>.<step>`: they must find the project's environment first.
export PATH := $(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export PYTHONUNBUFFERED := 1
EXPERIMENT ?= config/experiments/demo.yaml
RESULTS ?= results

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

# torch first and pinned: an unpinned torch pulled in by another package brings CUDA wheels.
$(VENV)/.installed: pyproject.toml requirements.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "asrsweep needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

demo: setup
	$(BIN)/snakemake --profile profiles/local --config experiment=$(EXPERIMENT) results=$(RESULTS)
	@echo
	@echo "Results: $(RESULTS)/summary.tsv (per run: $(RESULTS)/<experiment>/runs/<run>/)"
	@echo "Report:  $(BIN)/snakemake --config experiment=$(EXPERIMENT) results=$(RESULTS) --report report.html"
	@echo
	$(BIN)/asrsweep collect $(EXPERIMENT) --results $(RESULTS)

test: setup
	$(BIN)/python -m pytest -q -ra

lint: setup
	$(BIN)/snakemake --lint

bench: setup
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf .snakemake
