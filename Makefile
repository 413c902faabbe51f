# Session service: the two commands are `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: run test venv clean redrive

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

## make redrive: move dead-lettered webhooks back to the delivery queue
## (local by default; on AWS: make redrive STACK=<stack> ENDPOINT=)
STACK    ?= session-service-local
ENDPOINT ?= http://127.0.0.1:$(or $(MOTO_PORT),5055)
redrive: venv
	$(PY) -m infra.cli $(if $(ENDPOINT),--endpoint-url $(ENDPOINT)) redrive --stack $(STACK)
