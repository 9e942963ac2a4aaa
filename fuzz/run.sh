#!/bin/sh
# Fuzz every target for a while on the stable toolchain (cargo-fuzz with --sanitizer none:
# libFuzzer + SanitizerCoverage; our parsers are safe Rust, so ASan would add nothing but a
# nightly requirement). New inputs go to fuzz/work/<target> (ignored by git); the committed
# corpus in fuzz/corpus/<target> is read, never written. Crashes land in fuzz/artifacts/<target>.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]       default: 60 s, every target
#   fuzz/run.sh --minimize TARGET                      merge fuzz/work/TARGET into a minimal set
#                                                      in fuzz/corpus/TARGET (to commit)
# Needs: cargo install cargo-fuzz; a C++ compiler (libFuzzer is built from source).
set -eu
cd "$(dirname "$0")"
limits="-rss_limit_mb=1024 -malloc_limit_mb=512 -timeout=10"
max_len() {
  case "$1" in
    promises|unveil) echo 4096 ;;
    *) echo 65536 ;;
  esac
}
if [ "${1:-}" = "--minimize" ]; then
  t=$2
  mkdir -p "work/$t" "work/$t.min"
  cargo fuzz build --sanitizer none "$t" >/dev/null
  "target/x86_64-unknown-linux-gnu/release/$t" -merge=1 $limits "work/$t.min" "corpus/$t" "work/$t"
  cp -n "work/$t.min"/* "corpus/$t"/ 2>/dev/null || true
  exit 0
fi
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-$(cargo fuzz list)}
# Build once, then run the binaries directly (cargo fuzz run would rebuild per target).
cargo fuzz build --sanitizer none >/dev/null
bin=target/x86_64-unknown-linux-gnu/release
for t in $targets; do
  mkdir -p "work/$t" "artifacts/$t"
  echo "== $t: ${secs}s"
  "$bin/$t" "work/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" \
    -max_total_time="$secs" -max_len="$(max_len "$t")" $limits -print_final_stats=1 2>&1 |
    tee "work/$t.log" | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss|Done|==[0-9]+==|SUMMARY|.*panicked)" || true
done
