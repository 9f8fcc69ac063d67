# The two commands a newcomer needs: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench clean

$(BIN)/scrm: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	@touch $(BIN)/scrm

install: $(BIN)/scrm

# The API on the embedded default (SQLite under ./var, no services) with demo data.
run: install
	$(BIN)/scrm demo

# Every test. Integration tests use PostgreSQL on 127.0.0.1:5432 and NATS on :4222; they skip
# without them, except under CI=true, where a missing service fails the run.
test: install
	$(BIN)/ruff check .
	# Two workers: many tests wait on PostgreSQL, NATS or a child process, and every test has
	# its own database and stream, so they run side by side safely (about 40 % faster here).
	$(BIN)/pytest -q -n 2

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy domain projections infra api

bench: install
	$(BIN)/scrm bench

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
