#!/usr/bin/env bash
# Times our parser against syslog_loose on each benchmark input (bench/inputs.rs) in turns:
# every round runs ours for about a millisecond, then syslog_loose for as many messages, and
# the per-round ratio is kept. A shared machine's load slows both sides of a round alike, so
# the median ratio moves far less between runs than criterion's two separate measurements.
# Columns: nanoseconds per message (ours, syslog_loose; medians), then syslog_loose ÷ ours
# (above 1 when ours is faster).
#
#   bench/parse-race.sh                      # parse and parse+JSON, every input, 301 rounds
#   ROUNDS=101 INPUTS="rfc3164_fortigate" bench/parse-race.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/dev-env.sh
ensure_rust
# The criterion benchmark's build directory (bench/README.md): no relay, no RocksDB in it.
target=/var/tmp/auditrelay-bench-target
CARGO_TARGET_DIR=$target cargo build -q --release -p auditrelay-parsers --example parse_loop
bin=$target/release/examples/parse_loop
for mode in parse json; do
  printf '%-20s %9s %9s %7s   (%s, ns per message)\n' input ours loose ratio "$mode"
  for name in ${INPUTS:-rfc5424_sd rfc5424_plain rfc3164_linux rfc3164_cisco_ios rfc3164_fortigate}; do
    "$bin" "$name" "race-$mode" "${ROUNDS:-301}"
  done
done
