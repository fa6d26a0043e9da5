#!/usr/bin/env bash
# Cross-check of the mock eIDAS node's RSASSA-PSS signatures and ECDH-ES encryption with
# libxmlsec1 1.3 (PyPI `xmlsec` wheel, in a venv made here). Fails loudly, never skips.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${XMLSEC_VENV:-${CARGO_TARGET_DIR:-target}/xmlsec-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
# The wheel 1.3.17 bundles libxmlsec1 1.3.9, 1.3.18 bundles 1.3.13; check.py passes with both
# (1.3.13 enforces maxEncryptedKeyLevel across nested contexts, so check.py decrypts the
# EncryptedKey and then the EncryptedData; see its decrypt()).
"$VENV/bin/pip" install --quiet --disable-pip-version-check 'xmlsec>=1.3.17' lxml cryptography
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
# Built with the workspace's feature set (as `make test` builds it), so no dependency is
# recompiled for a different one, as `cargo run -p idp-mocks` would.
cargo build --quiet --workspace --examples
"${CARGO_TARGET_DIR:-target}/debug/examples/crosscheck_fixture" "$DIR"
"$VENV/bin/python" tests/xmlsec-crosscheck/check.py "$DIR"
