#!/usr/bin/env bash
# Dependency audit: every crate in Cargo.lock against the RustSec advisory database
# (`cargo audit`). Installs cargo-audit once if it is missing (a few minutes of compiling), then
# runs it; any advisory that is not ignored in .cargo/audit.toml (each with its reason) fails.
#
# The database is a git repository (github.com/rustsec/advisory-db). cargo-audit fetches it into
# ~/.cargo/advisory-db; where that host cannot be reached, an existing copy there (or at
# $COZO_ADVISORY_DB) is used as it is, however old (--no-fetch --stale), and the run says how old.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo audit --version >/dev/null 2>&1; then
  echo "audit: installing cargo-audit (once)" >&2
  cargo install --locked cargo-audit
fi

db=${COZO_ADVISORY_DB:-$HOME/.cargo/advisory-db}
args=()
if ! timeout 15 git ls-remote -q https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
  if [ -d "$db/.git" ] || [ -f "$db/HEAD" ]; then
    echo "audit: advisory database not reachable; using the copy at $db," \
      "last changed $(git -C "$db" log -1 --format=%cs 2>/dev/null || echo '?')" >&2
    args=(--db "$db" --no-fetch --stale)
  else
    echo "audit: the advisory database cannot be fetched and there is no copy at $db" >&2
    exit 1
  fi
fi
cargo audit "${args[@]}"
