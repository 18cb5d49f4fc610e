.PHONY: serve test setup setup-test lint bench images stack data

# Start the service on the embedded default (no Redis, no Docker): http://127.0.0.1:8000/docs
serve: setup
	.venv/bin/azr-exec serve --host 127.0.0.1 --port 8000

# Install everything the tests need (Redis, Docker engine + images, Chromium, Prometheus) and run them all.
test: setup-test
	mkdir -p artifacts
	.venv/bin/pytest -q --durations=15 --junitxml=artifacts/junit.xml

setup:
	scripts/bootstrap.sh core

setup-test:
	scripts/bootstrap.sh test

lint:
	.venv/bin/ruff format --check executor api tests client trainer
	.venv/bin/ruff check executor api tests client trainer
	.venv/bin/mypy executor api

# The optional, larger data sets (MBPP+, the math sets) into data/, from ../shared/data when it is
# there, else it says where to get them (scripts/data.sh). CRUXEval and the AZR seeds ship in data/.
data:
	scripts/data.sh

bench: setup
	.venv/bin/azr-exec bench

# Build the Docker images (base from debootstrap, sandbox, service, redis, prometheus) locally.
images:
	sandbox_images/ensure-docker
	sandbox_images/build

# The full stack: redis, api, workers in sandbox containers, prometheus (docs/docker.md).
stack: images
	docker-compose up -d --scale worker=2
