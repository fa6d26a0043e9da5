#!/usr/bin/env bash
# The PostgreSQL half of the suite is not optional: fail early and clearly when the server is
# unreachable, and drop the databases earlier test runs left behind.
set -euo pipefail
url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
if ! psql "$url" -Atqc 'SELECT 1' >/dev/null 2>&1; then
  echo "error: PostgreSQL is not reachable at $url (set TEST_DATABASE_URL)." >&2
  echo "       The tests run on SQLite and PostgreSQL; they do not skip PostgreSQL." >&2
  exit 1
fi
for db in $(psql "$url" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'cozo\_test\_%'"); do
  psql "$url" -Atqc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
done
