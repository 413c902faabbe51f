# Session service: the two commands are `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: run test venv clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

## make run: moto server + infra/ deployed into it + the API on http://127.0.0.1:$(PORT)/api
run: venv
	PORT=$(PORT) $(PY) -m infra.local

## make test: the whole suite (unit, API against moto, local server over HTTP)
test: venv
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
