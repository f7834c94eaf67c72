#!/usr/bin/env bash
# Runs one cargo-fuzz target until the fuzzer process has used CPU_SECONDS of CPU time
# (user + system, read from /proc/PID/stat), not wall time: on a shared 2-core machine
# libFuzzer's -max_total_time (wall clock) gives a target less CPU than it says. The
# fuzzer is then stopped with SIGINT, which makes libFuzzer print its final stats and exit
# 72 ("run interrupted"); any other non-zero exit is a crash, kept in artifacts/<target>/.
#
#   fuzz/run-cpu.sh TARGET CPU_SECONDS      (after `cargo fuzz build -O`, from fuzz/)
set -euo pipefail
cd "$(dirname "$0")"
target=$1 budget=$2
bin=target/$(rustc -vV | sed -n 's/^host: //p')/release/$target
[ -x "$bin" ] || { echo "no $bin: run RUSTC_BOOTSTRAP=1 cargo fuzz build -O first" >&2; exit 2; }
mkdir -p "corpus/$target" "seeds/$target" "artifacts/$target" logs
log=logs/$target.log
tick=$(getconf CLK_TCK)
# As `cargo fuzz run` sets it: the bundled SQLite's globals trip ASan's ODR check at start.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0} \
  "$bin" "corpus/$target" "seeds/$target" -artifact_prefix="artifacts/$target/" \
    -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 &
pid=$!
start=$(date +%s)
cpu=0
while kill -0 "$pid" 2>/dev/null; do
  # Fields 14 and 15 of /proc/PID/stat: utime and stime in clock ticks (comm has no spaces).
  if stat=$(cat "/proc/$pid/stat" 2>/dev/null); then
    set -- $stat
    cpu=$(((${14} + ${15}) / tick))
    if [ "$cpu" -ge "$budget" ]; then
      kill -INT "$pid"
      break
    fi
  fi
  sleep 1
done
rc=0
wait "$pid" || rc=$?
wall=$(($(date +%s) - start))
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
corpus=$(find "corpus/$target" -type f | wc -l)
echo "$target: cpu ${cpu}s wall ${wall}s execs ${execs:-?} cov ${cov:-?} ft ${ft:-?} corpus $corpus peak_rss ${rss:-?}MB exit $rc"
if [ "$rc" -ne 72 ] && [ "$rc" -ne 0 ]; then
  echo "$target: the fuzzer stopped on its own (exit $rc): a crash? see $log and artifacts/$target/" >&2
  exit 1
fi
