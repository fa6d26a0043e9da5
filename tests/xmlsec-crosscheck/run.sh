#!/usr/bin/env bash
# Cross-check of the mock eIDAS node's RSASSA-PSS signatures and ECDH-ES encryption with
# libxmlsec1 1.3 (PyPI `xmlsec` wheels, each in a venv made here). Fails loudly, never skips.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Two pinned wheels, so that a run does not change with what PyPI publishes next: 1.3.17 bundles
# libxmlsec1 1.3.9, 1.3.18 bundles 1.3.13. 1.3.13 enforces maxEncryptedKeyLevel across nested
# contexts, so check.py decrypts the EncryptedKey and then the EncryptedData (see its decrypt()).
VERSIONS="${XMLSEC_VERSIONS:-1.3.17 1.3.18}"
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
# Built with the workspace's feature set (as `make test` builds it), so no dependency is
# recompiled for a different one, as `cargo run -p idp-mocks` would.
cargo build --quiet --workspace --examples
"${CARGO_TARGET_DIR:-target}/debug/examples/crosscheck_fixture" "$DIR"
for v in $VERSIONS; do
  VENV="${CARGO_TARGET_DIR:-target}/xmlsec-venv-$v"
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "xmlsec==$v" lxml cryptography
  echo "xmlsec wheel $v:"
  "$VENV/bin/python" tests/xmlsec-crosscheck/check.py "$DIR"
done
