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
# job_file's seeds are the hack/ jobs themselves (no copies to go stale): a second corpus dir.
seed_dirs() {
  echo "corpus/$1"
  [ "$1" = job_file ] && echo ../hack
  return 0
}
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
  mkdir -p "corpus/$t"
  # shellcheck disable=SC2046 # one word per seed dir
  "target/x86_64-unknown-linux-gnu/release/$t" -merge=1 $limits "work/$t.min" $(seed_dirs "$t") "work/$t"
  cp -n "work/$t.min"/* "corpus/$t"/ 2>/dev/null || true
  # The merge copied the hack/ seeds too; they stay in hack/ only.
  if [ "$t" = job_file ]; then
    for f in "corpus/$t"/*; do
      for h in ../hack/*.hcl; do cmp -s "$f" "$h" && rm -f "$f"; done
    done
  fi
  exit 0
fi
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-$(cargo fuzz list)}
# Build once, then run the binaries directly (cargo fuzz run would rebuild per target).
cargo fuzz build --sanitizer none >/dev/null
bin=target/x86_64-unknown-linux-gnu/release
for t in $targets; do
  mkdir -p "work/$t" "artifacts/$t" "corpus/$t"
  echo "== $t: ${secs}s"
  # shellcheck disable=SC2046 # one word per seed dir
  "$bin/$t" "work/$t" $(seed_dirs "$t") -artifact_prefix="artifacts/$t/" \
    -max_total_time="$secs" -max_len="$(max_len "$t")" $limits -print_final_stats=1 2>&1 |
    tee "work/$t.log" | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss|Done|==[0-9]+==|SUMMARY|.*panicked)" || true
done
