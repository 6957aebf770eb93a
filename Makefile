# The README's commands. Each works on a fresh machine: it creates .venv, installs the
# project, installs and starts the local stack (python -m stack up), then runs.
PYTHON_BOOT ?= python3
VENV        := .venv
PYTHON      := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install tools stack demo test down status

$(VENV)/.installed: pyproject.toml
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

## tools: what the stack runs (apt packages, Kafka's, Debezium's and Spark's jars, MinIO's build);
## the standard library alone runs it, so `stack` starts it beside pip's install of the project.
tools:
	$(PYTHON_BOOT) -m stack.install

stack:
	@$(MAKE) --no-print-directory -j2 install tools
	$(PYTHON) -m stack up

## demo: the main job: stack up, reference data, CDC connector, two Faust workers, 25,000
## orders (chaos on), order_final checked against the manifest, the lake, a report.
ORDERS ?= 25000
CUSTOMERS ?= 1000000
WORKERS ?= 2
demo: stack
	$(PYTHON) -m demo --orders $(ORDERS) --customers $(CUSTOMERS) --workers $(WORKERS)
	$(PYTHON) -m stack status

## test: unit and integration tests against the real local stack (left running afterwards).
test: stack
	$(PYTHON) -m pytest --durations=20 $(PYTEST_ARGS)

status: install
	$(PYTHON) -m stack status

## down: stop every process the stack started.
down:
	@if [ -x $(PYTHON) ]; then $(PYTHON) -m stack down; fi
