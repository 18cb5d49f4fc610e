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

# ruff format --check, ruff check, mypy (tests/test_lint.py) and the import layering (tests/test_layering.py).
lint:
	.venv/bin/pytest -q -p no:cacheprovider tests/test_lint.py tests/test_layering.py

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
