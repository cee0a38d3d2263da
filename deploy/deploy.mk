# Deployment: container images and the offline validation of deploy/ (included by the Makefile).
#
#   make images        build the four service images with buildah (daemonless, no registry)
#   make test-deploy   render every overlay and validate it (also part of `make test`)

DEPLOY_VENV := .venv-deploy
DEPLOY_PY := $(DEPLOY_VENV)/bin/python
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed
SERVICES := ideas votes insights notifications
IMAGE_TAG ?= 0.1.0
BASE_IMAGE ?= localhost/centricity-base:bookworm
BUILDAH ?= buildah
BUILDAH_FLAGS ?= --isolation chroot --runtime runc --format docker --layers

.PHONY: deploy-tools deploy-constraints test-deploy lint-deploy clean-deploy images base-image wheels images-smoke

# The validators (kubernetes-validate, checkov, hadolint, jsonschema) have many dependencies of
# their own: they get their own venv and constraints, never mixed with the services' pins.
$(DEPLOY_STAMP): deploy/tools/pyproject.toml deploy/tools/constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed (set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(DEPLOY_PY) || $(PYTHON) -m venv $(DEPLOY_VENV)
	PIP_CONSTRAINT=$(CURDIR)/deploy/tools/constraints.txt $(DEPLOY_PY) -m pip install --quiet pip setuptools
	PIP_CONSTRAINT=$(CURDIR)/deploy/tools/constraints.txt $(DEPLOY_PY) -m pip install --quiet ./deploy/tools
	touch $(DEPLOY_STAMP)

deploy-tools: $(DEPLOY_STAMP)

test-deploy: $(DEPLOY_STAMP)
	$(DEPLOY_PY) -m pytest -c deploy/tools/pytest.ini --rootdir deploy deploy/tests

# Re-pin the validation tools to what is installed in .venv-deploy now.
deploy-constraints: $(DEPLOY_STAMP)
	{ echo "# Pins of the deployment validation tools (deploy/tools). Regenerate: make deploy-constraints"; \
	  $(DEPLOY_PY) -m pip freeze --all --exclude-editable | grep -v '^centricity'; } > deploy/tools/constraints.txt

# An offline base: Debian bookworm minbase with python3, from Debian packages (needs root and
# debootstrap). Skipped when BASE_IMAGE is something else, e.g. a python:3.11-slim-bookworm mirror.
base-image:
	@if [ "$(BASE_IMAGE)" = "localhost/centricity-base:bookworm" ] && ! $(BUILDAH) inspect --type image $(BASE_IMAGE) >/dev/null 2>&1; then \
	  deploy/images/build-base.sh $(BASE_IMAGE); fi

images: base-image wheels
	@for s in $(SERVICES); do \
	  echo "== centricity-$$s:$(IMAGE_TAG) from $(BASE_IMAGE)"; \
	  $(BUILDAH) build $(BUILDAH_FLAGS) --pull=never --build-arg BASE_IMAGE=$(BASE_IMAGE) \
	    -f services/$$s/Dockerfile -t localhost/centricity-$$s:$(IMAGE_TAG) . || exit 1; \
	done
	$(BUILDAH) images --filter reference='localhost/centricity-*'

# Wheels of the four services and every pinned dependency, for offline image builds.
wheels: $(STAMP)
	rm -rf build/wheels
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(PY) -m pip wheel --quiet --wheel-dir build/wheels \
	  ./contracts ./plumbing $(foreach s,$(SERVICES),./services/$(s))

# Start each built image against a local Kafka and MongoDB: /health, then /ready, as user 10001.
images-smoke: $(STAMP)
	$(PY) deploy/images/smoke.py $(SERVICES)

# `make test` and `make lint` include the deployment checks.
test: test-deploy

lint-deploy: $(STAMP)
	$(PY) -m ruff check deploy
	$(PY) -m ruff format --check deploy

lint: lint-deploy

clean-deploy:
	rm -rf $(DEPLOY_VENV) build/wheels

clean: clean-deploy
