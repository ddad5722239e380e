# latentzoo: two commands on a fresh machine (see README):
#   make demo   -- set everything up and run the main job
#   make test   -- set everything up and run the tests
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first, pinned, so nothing pulls an unpinned CUDA build; then the package with its extras
# (the optional ones too, so the tests of the Dask and AnnData paths run on every fresh clone).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test,cluster,omics]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/latentzoo compare --out report

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/bench_linear.py

clean:
	rm -rf $(VENV) report
