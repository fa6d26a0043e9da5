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
  echo "validate-deploy: installing $(grep -v '^#' "$REQ" | xargs) into $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ" >&2
  cp "$REQ" "$VENV/requirements.txt"
fi

status=0
"$VENV/bin/python" scripts/validate-deploy.py || status=1

# The Compose CLI's own check (interpolation, merges, paths), when it is installed.
if docker compose version >/dev/null 2>&1; then
  if COZO_MASTER_KEY=x COZO_DB_PASSWORD=x docker compose -f deploy/compose.yaml config -q; then
    echo "ok   deploy/compose.yaml: docker compose config"
  else
    echo "FAIL deploy/compose.yaml: docker compose config"
    status=1
  fi
else
  echo "skip deploy/compose.yaml: docker compose config (Docker Compose is not installed)"
fi

if [ "$status" = 0 ]; then
  echo "validate-deploy: all deploy files are valid"
else
  echo "validate-deploy: FAILED" >&2
fi
exit "$status"
