#!/usr/bin/env bash
# Fuzzing (`make fuzz`): each cargo-fuzz target in fuzz/ for FUZZ_SECONDS (default 60) with
# libFuzzer and AddressSanitizer, starting from the seeds in fuzz/seeds/<target>/ and the
# corpus it grew before (fuzz/corpus/, not committed). A crash stops the run with the input in
# fuzz/artifacts/<target>/. Not part of `make test`.
#
#   scripts/fuzz.sh                       # all targets, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh insz # one target, longer
#
# cargo-fuzz needs a nightly compiler: the `nightly` toolchain when rustup has one, else the
# stable one with RUSTC_BOOTSTRAP=1 (no other toolchain can be downloaded on these machines).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(insz authorize saml_response)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (once)" >&2
  cargo install --locked cargo-fuzz
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  FUZZ=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  FUZZ=(cargo fuzz)
fi

for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t"
  echo "fuzz: $t for ${SECONDS_EACH} s" >&2
  "${FUZZ[@]}" run "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$SECONDS_EACH" -timeout=10 \
    -rss_limit_mb=4096 -print_final_stats=1
done
