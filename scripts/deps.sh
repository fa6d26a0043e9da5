#!/usr/bin/env bash
# Installs the system packages the build and tests need, if they are missing (Debian/Ubuntu).
# samael's xmlsec bindings need libclang; xmlsec1 and libxml2 headers for the SAML SP.
set -euo pipefail
need=()
for pkg in libclang-dev libxmlsec1-dev libxml2-dev libxml2-utils libssl-dev libxslt1-dev pkg-config postgresql-client \
  chromium chromium-driver fonts-dejavu-core; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing: ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >&2
fi
