#!/usr/bin/env bash
# Instructions per message for parse and parse+JSON of each benchmark input (bench/inputs.rs),
# counted by valgrind's cachegrind: 20,000 iterations minus 10,000, so start-up cancels out.
# Unlike times, the counts do not move with the machine's load; compare a change against its
# parent with this before timing it with criterion. The last column is syslog_loose's parse of
# the same input (the criterion benchmark's comparison).
#
#   bench/parse-instructions.sh               # every input
#   INPUTS="rfc5424_plain" bench/parse-instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/dev-env.sh
ensure_rust
ensure_apt valgrind
# The criterion benchmark's build directory (bench/README.md): no relay, no RocksDB in it.
target=/var/tmp/auditrelay-bench-target
CARGO_TARGET_DIR=$target cargo build -q --release -p auditrelay-parsers --example parse_loop
bin=$target/release/examples/parse_loop
count() { # name mode n
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$bin" "$1" "$2" "$3" 2>&1 |
    awk '/I *refs/ {gsub(",", "", $4); print $4}'
}
printf '%-20s %12s %12s %13s\n' input parse parse+json syslog_loose
for name in ${INPUTS:-rfc5424_sd rfc5424_plain rfc3164_linux rfc3164_cisco_ios rfc3164_fortigate}; do
  row=()
  for mode in parse json loose; do
    a=$(count "$name" "$mode" 10000) b=$(count "$name" "$mode" 20000)
    row+=($(((b - a) / 10000)))
  done
  printf '%-20s %12s %12s %13s\n' "$name" "${row[@]}"
done
