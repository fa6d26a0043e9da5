#!/usr/bin/env bash
# Dependency audit: every crate in Cargo.lock against the RustSec advisory database (cargo-audit,
# installed once: a few minutes of compiling).
#
# What fails the run:
#   - a vulnerability advisory for any crate in Cargo.lock (cargo-audit's own rule);
#   - an informational advisory of kind `unsound` or `unmaintained` (--deny below), unless
#     .cargo/audit.toml ignores that advisory id with a comment giving the reason;
#   - no advisory database at all (none fetched, none of the copies below present).
# What does not fail it: a stale database (it is used with --stale, and the run prints its age),
# and yanked crates (checking them needs the crates.io index, which an offline run lacks).
#
# Which database: the live one (github.com/rustsec/advisory-db, fetched into
# ~/.cargo/advisory-db) when its host answers; otherwise the first copy that exists of
# $COZO_ADVISORY_DB, ~/.cargo/advisory-db and ../shared/advisory-db (a plain-file snapshot whose
# SNAPSHOT.txt names the commit). The run says which copy it used and how old it is.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo audit --version >/dev/null 2>&1; then
  echo "audit: installing cargo-audit (once)" >&2
  cargo install --locked cargo-audit
fi

deny=(--deny unsound --deny unmaintained)

# How old a copy is: its last commit (git copies), the date in SNAPSHOT.txt (plain snapshots),
# or else the newest file in it.
age_of() {
  local db=$1 day=""
  if [ -d "$db/.git" ] || [ -f "$db/HEAD" ]; then
    day=$(git -C "$db" log -1 --format=%cs 2>/dev/null || true)
  fi
  if [ -z "$day" ] && [ -f "$db/SNAPSHOT.txt" ]; then
    day=$(grep -oE '[0-9]{4}-[0-9]{2}-[0-9]{2}' "$db/SNAPSHOT.txt" | head -1 || true)
  fi
  if [ -z "$day" ]; then
    day=$(find "$db/crates" -type f -printf '%TY-%Tm-%Td\n' 2>/dev/null | sort | tail -1 || true)
  fi
  if [ -z "$day" ]; then
    echo "of unknown age"
    return
  fi
  local days=$(( ($(date +%s) - $(date -d "$day" +%s)) / 86400 ))
  echo "last changed $day, $days days ago"
}

if timeout 15 git ls-remote -q https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
  echo "audit: using the live RustSec advisory database (fetched into ~/.cargo/advisory-db)" >&2
  exec cargo audit "${deny[@]}"
fi

for db in "${COZO_ADVISORY_DB:-}" "$HOME/.cargo/advisory-db" "../shared/advisory-db"; do
  [ -n "$db" ] && [ -d "$db/crates" ] || continue
  echo "audit: the advisory database cannot be fetched; using the copy at $db ($(age_of "$db"))" >&2
  exec cargo audit --db "$db" --no-fetch --stale "${deny[@]}"
done

echo "audit: the advisory database cannot be fetched and there is no copy at" \
  "\$COZO_ADVISORY_DB, ~/.cargo/advisory-db or ../shared/advisory-db" >&2
exit 1
