# Session service: the two commands are `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: run test venv chromium screenshots audit clean redrive package deploy bench rehearse rehearse-envs bench-cold-start

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

## make run: moto server + infra/ deployed into it + the API on http://127.0.0.1:$(PORT)/api
## (--foreground: Ctrl-C goes to the stack alone, which stops cleanly, so make exits 0)
run: venv
	PORT=$(PORT) $(PY) -m local.stack --foreground

## make test: the whole suite (unit, API against moto, local server over HTTP, the dashboard
## in headless Chromium, the deploy rehearsal)
test: venv chromium rehearse-envs
	$(PY) -m pytest

## chromium: Debian's browser for tests/browser/test_dashboard.py (playwright drives it; its own
## browser download is never used). Without apt-get the dashboard tests skip, saying why.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT  := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get
chromium:
	@test -x /usr/bin/chromium || ! command -v apt-get >/dev/null || { \
	  $(APT) install -y --no-install-recommends chromium fonts-dejavu-core || \
	  { $(APT) update && $(APT) install -y --no-install-recommends chromium fonts-dejavu-core; }; }
	@test -x /usr/bin/chromium || echo "warning: no /usr/bin/chromium: the dashboard tests will skip"

## make screenshots: the dashboard's pages as PNGs in tests/screenshots/ (committed)
screenshots: venv chromium
	SCREENSHOTS_DIR=tests/screenshots $(PY) -m pytest tests/browser

## make audit: pip-audit of requirements*.txt (CI runs it after the tests); fails on any
## known vulnerability and lists what could not be audited
audit: venv
	$(PY) -m tools.audit

clean:
	rm -rf $(VENV) $(SAM_VENV) $(LAMBDA_VENV) .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

## make redrive: move dead-lettered webhooks back to the delivery queue, through the API
## (local by default; deployed: make redrive URL=https://<api>/api, key in SESSION_SERVICE_API_KEY)
URL ?= $(or $(SESSION_SERVICE_URL),http://127.0.0.1:$(PORT)/api)
redrive: venv
	$(PY) -m cli --url $(URL) redrive

## make package: the deployable SAM template + zip in out/package (works offline of AWS)
package: venv
	$(PY) -m infra.package out

## make deploy STAGE=prod BUCKET=<s3 bucket> [WEBHOOK_URL=... WEBHOOK_SECRET=whsec_...]
## needs an AWS account and the AWS CLI (these machines have neither)
deploy: package
	@test -n "$(STAGE)" -a -n "$(BUCKET)" || { echo "usage: make deploy STAGE=<name> BUCKET=<s3 bucket>"; exit 2; }
	aws cloudformation package --template-file out/package/sam.json --s3-bucket $(BUCKET) \
	  --output-template-file out/packaged.json --use-json
	aws cloudformation deploy --template-file out/packaged.json --stack-name session-service-$(STAGE) \
	  --capabilities CAPABILITY_IAM --parameter-overrides \
	  WebhookUrl=$(WEBHOOK_URL) WebhookSecret=$(WEBHOOK_SECRET)
	aws cloudformation describe-stacks --stack-name session-service-$(STAGE) --query 'Stacks[0].Outputs'

## make rehearse: the packaged stack translated by SAM, created in moto's CloudFormation, and
## every function run from the zip as Lambda runs it (infra/rehearsal/; offline, < 1 min once
## the two environments below exist; tests/deploy/test_rehearse.py runs it in make test)
rehearse: venv rehearse-envs
	$(PY) -m infra.rehearsal

## rehearse-envs: the SAM translator's environment (its pydantic is older than ours) and one
## holding only what Lambda's python3.11 runtime provides (boto3), built once from the pins
SAM_VENV    ?= .venv-sam
LAMBDA_VENV ?= .venv-lambda
rehearse-envs: $(SAM_VENV)/.installed $(LAMBDA_VENV)/.installed

$(SAM_VENV)/.installed: infra/rehearsal/requirements-sam.txt
	rm -rf $(SAM_VENV) && $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	@touch $@

# pip and setuptools leave again: the runtime has neither, so nothing may lean on them
$(LAMBDA_VENV)/.installed: infra/rehearsal/requirements-lambda-runtime.txt
	rm -rf $(LAMBDA_VENV) && $(PYTHON) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	$(LAMBDA_VENV)/bin/python -m pip uninstall --quiet --yes pip setuptools
	@touch $@

## make bench-cold-start: cold `import app` from the read-only unzipped package, with and
## without its bytecode, against `import boto3` (results: bench/RESULTS.md)
bench-cold-start: venv rehearse-envs
	$(PY) bench/bench_cold_start.py

## make bench: the benchmarks in bench/ (results: bench/RESULTS.md)
bench: venv
	$(PY) bench/bench_requests.py
	$(PY) bench/bench_scaling.py
	$(PY) bench/bench_http.py
