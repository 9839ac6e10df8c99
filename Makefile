# The two commands on a fresh clone: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Chart.js, from the npm package pinned in assets/package-lock.json.
CHART_JS := src/execmetrics/web/static/vendor/chart.umd.js

.PHONY: run test lint bench bench-api bench-alerting bench-forecast bench-anomaly bench-activity \
	bench-churn bench-forecast-demo assets clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(CHART_JS): assets/package-lock.json
	npm ci --prefix assets --no-audit --no-fund --loglevel=error
	mkdir -p $(dir $(CHART_JS))
	cp assets/node_modules/chart.js/dist/chart.umd.js $(CHART_JS)

assets: $(CHART_JS)

# The demo company when the database is empty, then the server with a one-time admin sign-in.
run: $(STAMP) $(CHART_JS)
	$(BIN)/execmetrics demo --customers 5000 --months 36 --seed 7
	$(BIN)/execmetrics serve --first-admin

test: $(STAMP) $(CHART_JS)
	$(BIN)/python -m pytest -q -n auto

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/revenue_engine.py

bench-api: $(STAMP) $(CHART_JS)
	$(BIN)/python bench/api_server.py

bench-alerting: $(STAMP)
	$(BIN)/python bench/alerting.py --work-dir var/bench

bench-forecast: $(STAMP)
	$(BIN)/python bench/forecast_eval.py

bench-anomaly: $(STAMP)
	$(BIN)/python bench/anomaly_eval.py

# 10,000,000 activity events ingested into SQLite (inputs written once into var/).
bench-activity: $(STAMP)
	$(BIN)/python bench/activity_ingest.py --work-dir var/bench-activity

# Churn training and scoring on the 100,000-customer demo company (built once into var/).
bench-churn: $(STAMP)
	mkdir -p var/bench-churn
	test -f var/bench-churn/demo.db || $(BIN)/execmetrics demo --customers 100000 --months 36 \
		--seed 7 --end 2026-11 --db sqlite:///var/bench-churn/demo.db
	$(BIN)/python bench/churn_speed.py --db sqlite:///var/bench-churn/demo.db --as-of 2026-12-01

# One forecast of the demo company's MRR, as the command and the server compute it (the demo
# company of the alerting benchmark, built once into var/).
bench-forecast-demo: $(STAMP)
	mkdir -p var/bench-forecast
	test -f var/bench-forecast/demo.db || $(BIN)/execmetrics demo --customers 100000 --months 36 \
		--seed 7 --end 2025-12 --db sqlite:///var/bench-forecast/demo.db
	$(BIN)/python bench/forecast_demo.py --db sqlite:///var/bench-forecast/demo.db

clean:
	rm -rf $(VENV) var assets/node_modules $(dir $(CHART_JS))
