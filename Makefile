# SimpleDB operator. `make help` lists the targets.
# Conventions follow the operator-sdk Ansible scaffold (run, install, deploy, docker-build ...).

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VERSION ?= 0.1.0
IMG ?= quay.io/example/simpledb-operator:$(VERSION)
CONTAINER_TOOL ?= docker
VENV := .venv
PY := $(VENV)/bin/python
KUSTOMIZE_OVERLAY ?= deploy/default
# The test bed's kubeconfig; `make run` uses it when KUBECONFIG is not set.
TESTBED_KUBECONFIG := $(or $(SIMPLEDB_CACHE),$(HOME)/.cache/simpledb)/testbed/state/kubeconfig
KUBECTL ?= $(shell testbed/build.sh --print-bindir)/kubernetes-v1.36.3/kubectl

##@ General
.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
	  /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development
.PHONY: venv
venv: ## Create .venv (Python 3.12, pinned from requirements/dev.lock).
	@hack/venv.sh

.PHONY: deps
deps: venv ## Install everything the tests need (venv, MariaDB, the test bed binaries).
	@hack/system-deps.sh
	@testbed/build.sh

.PHONY: lock
lock: ## Re-resolve requirements/dev.in into requirements/dev.lock.
	@rm -rf .lock-venv && $$(hack/venv.sh >/dev/null; echo $(PY)) -m venv .lock-venv
	@.lock-venv/bin/pip install --quiet -r requirements/dev.in && .lock-venv/bin/pip freeze >requirements/dev.lock
	@rm -rf .lock-venv && echo "requirements/dev.lock updated"

.PHONY: crds
crds: venv ## Regenerate deploy/crd/bases from hack/crdgen.py.
	@$(PY) hack/crdgen.py

.PHONY: lint
lint: venv ## ansible-lint (production profile), yamllint and ruff.
	@$(VENV)/bin/yamllint -s .
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@PATH=$(VENV)/bin:$$PATH $(VENV)/bin/ansible-lint --profile production

.PHONY: test
test: deps ## Run the whole test suite (sets up everything it needs).
	@PATH=$(VENV)/bin:$$PATH $(VENV)/bin/pytest $(PYTEST_ARGS)

.PHONY: molecule
molecule: deps ## Molecule's local scenario on the test bed (MOLECULE_SCENARIO=local).
	@testbed/cluster.sh up
	@eval "$$(testbed/cluster.sh env)" && export K8S_AUTH_KUBECONFIG=$$KUBECONFIG && \
	  PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/molecule test -s $(or $(MOLECULE_SCENARIO),local)

.PHONY: bench
bench: deps ## Benchmarks: print tables and write docs/benchmarks.md.
	@PATH=$(VENV)/bin:$$PATH $(PY) -m bench $(BENCH_ARGS)

##@ Local cluster (the test bed: design section 8)
.PHONY: testbed
testbed: ## Build the test bed's binaries into the cache (~14 min cold, seconds warm).
	@testbed/build.sh

.PHONY: cluster-up
cluster-up: deps ## Start the local control plane, cluster DNS and the pod runtime.
	@testbed/cluster.sh up

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and everything it started.
	@testbed/cluster.sh down

##@ Run the operator
.PHONY: run
run: deps ## Run the operator on watches.yaml (the local cluster unless KUBECONFIG is set).
	@testbed/run.sh

.PHONY: install
install: ## Install the CRDs into the cluster of KUBECONFIG.
	@$(KUBECTL) apply --server-side -k deploy/crd

.PHONY: uninstall
uninstall: ## Remove the CRDs (and every SimpleDB with them).
	@$(KUBECTL) delete --ignore-not-found -k deploy/crd

.PHONY: deploy
deploy: ## Deploy the operator image IMG with kustomize (KUSTOMIZE_OVERLAY=deploy/default).
	@$(KUBECTL) kustomize $(KUSTOMIZE_OVERLAY) | sed 's|controller:latest|$(IMG)|' | $(KUBECTL) apply -f -

.PHONY: undeploy
undeploy: ## Remove what `make deploy` created.
	@$(KUBECTL) kustomize $(KUSTOMIZE_OVERLAY) | $(KUBECTL) delete --ignore-not-found -f -

##@ Build
.PHONY: docker-build
docker-build: ## Build the operator image IMG.
	$(CONTAINER_TOOL) build -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the operator image IMG.
	$(CONTAINER_TOOL) push $(IMG)

.PHONY: ansible-operator
ansible-operator: ## Download the ansible-operator release binary into bin/ (needs the internet).
	@hack/ansible-operator.sh
